"""The storage ports, one per aggregate, each in its own module.

- :class:`~manager.store.ports.runs.RunStore`: runs, results, the ledger
  journal, the cohort listing;
- :class:`~manager.store.ports.learning.LearningStore`: hall of fame,
  populations, knowledge base, search trials and study settings;
- :class:`~manager.store.ports.audit.AuditStore`: audit events;
- :class:`~manager.store.ports.policy.PolicyStore`: risk-policy decisions and
  the kill switch;
- :class:`~manager.store.ports.users.UsersStore`: users, roles, token hashes;
- :class:`~manager.store.ports.promotions.CampaignStore` and
  :class:`~manager.store.ports.promotions.PromotionStore`: stored campaigns,
  promotion requests and their transition log;
- :class:`~manager.store.ports.deployments.DeploymentStore`: micro-live
  deployments (conditional on the last processed bar) and rollback incidents;
- :class:`~manager.store.ports.alerts.AlertStore`: alerts (deduplicated and
  rate-limited per rule and subject) and their delivery record;
- :class:`~manager.store.ports.intents.IntentStore`: the assistant's intents (grow plans
  and their actual-against-plan reports) and the knowledge base's entries.

:class:`manager.store.base.Store` combines them (one store object implements
every port). Adding a port (promotions, policy decisions, deployments): a
module here with an ABC of the aggregate's operations and document shapes, its
document checks in :mod:`manager.store.documents`, one mixin per adapter
(``manager/store/sqlite/<aggregate>.py``, ``manager/store/mongo/<aggregate>.py``),
its tables/collections in a new migration, and the ABC and mixins added to the
bases of ``Store``, ``SQLiteStore`` and ``MongoStore``.
"""

from manager.store.ports.audit import AuditStore
from manager.store.ports.learning import LearningStore
from manager.store.ports.policy import PolicyStore
from manager.store.ports.runs import RunStore
from manager.store.ports.users import UsersStore
from manager.store.ports.promotions import CampaignStore, PromotionStore
from manager.store.ports.deployments import DeploymentStore
from manager.store.ports.alerts import AlertStore
from manager.store.ports.intents import IntentStore

__all__ = ["AuditStore", "LearningStore", "PolicyStore", "RunStore", "UsersStore",
           "CampaignStore", "PromotionStore", "DeploymentStore", "AlertStore",
           "IntentStore"]
