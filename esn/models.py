"""Imports every feature's tables so that ``Base.metadata`` is complete (migrations, tests)."""

from esn.accounts import models as accounts_models
from esn.directory import models as directory_models
from esn.governance import models as governance_models
from esn.governance import readings as governance_readings
from esn.groups import models as groups_models
from esn.moderation import models as moderation_models
from esn.outbox import models as outbox_models
from esn.photos import models as photos_models
from esn.realtime import models as realtime_models
from esn.search import models as search_models
from esn.social import models as social_models
from esn.usage import models as usage_models
from esn.usage import rollups as usage_rollups

__all__ = [
    "accounts_models",
    "directory_models",
    "governance_models",
    "governance_readings",
    "groups_models",
    "moderation_models",
    "outbox_models",
    "photos_models",
    "realtime_models",
    "search_models",
    "social_models",
    "usage_models",
    "usage_rollups",
]
