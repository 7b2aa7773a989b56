"""The hostile-peer harness (issue 7): a peer with valid keys attacks a station.

Assertions in the harness's helper modules are rewritten like those in test modules,
so that a failed attack shows the codes and rows it got.
"""

import pytest

pytest.register_assert_rewrite(
    "tests.hostile.attacks", "tests.hostile.target", "tests.hostile.peer"
)
