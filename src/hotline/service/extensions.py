"""The line's own projection extensions: the people-on-watch projections every station
runs (officers' record, channels, approvals, stages, watch, suspension, dissemination).

Owns the list ``CORE``: one factory per extension, called with the line's context when
the line is built, so a station, an in-process test pair and a rebuild all project the
same. Each extension lives in its own module and owns its tables (wiped and rebuilt from
the ledger). Must not touch: anything but the list.
"""

from __future__ import annotations

from collections.abc import Callable

from hotline.service import approvals, channels, dissemination, officers, stages, suspension, watch
from hotline.service.context import LineContext
from hotline.store.projections import ProjectionExtension

#: factories of the core extensions, in the order they see each entry
CORE: list[Callable[[LineContext], ProjectionExtension]] = [
    approvals.ApprovalsProjection.make,
    watch.make,  # rota, escalations, handovers (service/watch.py)
    stages.extension,  # message stages and acknowledgements (service/stages.py)
    officers.OfficerRecord,
    suspension.make,  # suspensions (service/suspension.py)
    dissemination.make,  # dissemination records (service/dissemination.py)
    channels.install,
]
