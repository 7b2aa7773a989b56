"""A peer's escalation data, any JSON: accepted only as exactly an ``EscalationData``
(a UUID message id, a step of 1 to 8, a ladder role), else refused with a code."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hotline.errors import InputError
from hotline.service.escalation import EscalationData, check_data

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=10,
)
ROLES = ["watch_officer", "senior_watch_officer", "principal", "administrator", "auditor", ""]
NEAR = st.fixed_dictionaries(
    {},
    optional={
        "message_id": st.uuids().map(str) | JSON,
        "step": st.integers(-2, 10) | JSON,
        "role": st.sampled_from(ROLES) | JSON,
        "extra": JSON,
    },
)


@given(NEAR | st.dictionaries(st.text(max_size=12), JSON))
def test_escalation_data_is_exact_or_refused(data: dict[str, Any]) -> None:
    try:
        check_data(data)
    except InputError as exc:
        refused: InputError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.code == "bad_message_data"
        return
    parsed = EscalationData.model_validate(data)
    assert set(data) == {"message_id", "step", "role"}
    assert str(uuid.UUID(parsed.message_id)) == parsed.message_id
    assert 1 <= parsed.step <= 8
    assert parsed.role in ("watch_officer", "senior_watch_officer", "principal")
