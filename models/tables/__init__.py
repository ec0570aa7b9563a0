"""All tables. Importing this module registers every table on ``SQLModel.metadata``."""

from models.tables.cycle import (
    AccessToken,
    Cycle,
    CycleState,
    RequestState,
    RevisionKind,
    SubmissionRevision,
    UpdateRequest,
)
from models.tables.notify import DeliveryState, Notification, NotificationItem
from models.tables.plan import (
    Action,
    Agency,
    Contact,
    Milestone,
    MilestoneRevision,
    MilestoneStatus,
    Objective,
    Pillar,
    Plan,
)
from models.tables.report import (
    AnnualReport,
    EntryLink,
    EntryOrigin,
    EntryStyle,
    ObjectiveReport,
    ObjectiveReportAgency,
    ReportEntry,
    Section,
)
from models.tables.review import Account, AuditEvent, ReportVersion, VersionState

__all__ = [
    "AccessToken",
    "Account",
    "Action",
    "Agency",
    "AnnualReport",
    "AuditEvent",
    "Contact",
    "Cycle",
    "CycleState",
    "DeliveryState",
    "EntryLink",
    "EntryOrigin",
    "EntryStyle",
    "Milestone",
    "MilestoneRevision",
    "MilestoneStatus",
    "Notification",
    "NotificationItem",
    "Objective",
    "ObjectiveReport",
    "ObjectiveReportAgency",
    "Pillar",
    "Plan",
    "ReportEntry",
    "ReportVersion",
    "RequestState",
    "RevisionKind",
    "Section",
    "SubmissionRevision",
    "UpdateRequest",
    "VersionState",
]
