"""The demo's scripted year: its dates, its people and what each agency answers.

The demo plays the 2022 cycle of the bundled 2021 report of New Zealand's Plan of Action
against Forced Labour, People Trafficking and Slavery. Everything here is data: the dates are
chosen so that one year shows every kind of message (update requests in February, milestone
reminders in March and June, slip flags in April and July, deadline reminders in October, an
escalation after the deadline), and the answers are what the agencies' contacts type into
the form. The answers are invented for the demo; only the plan and the 2021 report are real.

Milestones and objectives are named by the start of their text as the form shows it (case
does not matter), so the script reads like instructions to a person filling in the form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

TIMEZONE = "Pacific/Auckland"
YEAR = 2022
# The 2021 report was last updated on 19 January 2022: imported the day after.
IMPORTED_ON = date(2022, 1, 20)
OPENED_ON = date(2022, 2, 1)  # a Tuesday, before Waitangi Day (observed Monday 7 February)
DEADLINE = date(2022, 10, 28)  # a Friday, after Labour Day (Monday 24 October)
# The beat's sweep of each day; every event of a day happens after it.
SWEEP_AT = time(9, 0)
COORDINATOR_EMAIL = "coordinator@example.govt.nz"
COORDINATOR_NAME = "Plan of Action coordinator"
# The coordinators' contact belongs to the agency that coordinates the plan.
COORDINATOR_AGENCY = "MBIE"


def contact_email(acronym: str) -> str:
    return f"progress@{acronym.lower()}.example.govt.nz"


@dataclass(frozen=True)
class MilestoneAnswer:
    """What the contact chooses for the milestone whose text starts with ``match``."""

    match: str
    progress: str  # completed | on_track | delayed | dropped
    completed_on: date | None = None
    achievement: str | None = None
    new_period: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RowAnswer:
    """A row typed under the objective whose title starts with ``objective``."""

    objective: str
    text: str
    link_title: str | None = None
    link_url: str | None = None
    period: str | None = None  # new milestones only


@dataclass(frozen=True)
class Visit:
    """One contact opening the agency's link and saving or submitting the form."""

    agency: str
    day: date
    at: time
    submit: bool
    milestones: tuple[MilestoneAnswer, ...] = ()
    achievements: tuple[RowAnswer, ...] = ()
    further_work: tuple[RowAnswer, ...] = ()
    new_milestones: tuple[RowAnswer, ...] = ()
    # On submit, milestones the script does not name are answered as a person would: those
    # whose period has ended are completed, the others on track.
    answer_the_rest: bool = True
    # Which mail's link the contact follows: the update request, or the latest mail
    # carrying a link (a reminder, an escalation, a request for changes).
    link_from: str = "latest"
    why: str = ""


@dataclass(frozen=True)
class ChangeRequest:
    agency: str
    day: date
    at: time
    comment: str


@dataclass(frozen=True)
class Review:
    """The coordinator's review: a request for changes, then approval and publication."""

    changes: ChangeRequest
    publish_on: date
    publish_at: time


_MBIE_ANSWERS = (
    MilestoneAnswer(
        "Information about migrant exploitation published",
        "completed",
        date(2021, 12, 10),
        "Information about migrant exploitation and how to report it is now on the MBIE "
        "website in 13 languages.",
    ),
    MilestoneAnswer(
        "MBIE’s people trafficking communications strategy",
        "completed",
        date(2021, 12, 15),
        "The people trafficking communications strategy was reviewed with the Reference Group "
        "and now guides MBIE's communication activities.",
    ),
    MilestoneAnswer(
        "Report of concern (ROC) data",
        "delayed",
        new_period="Quarter 2 2023",
        reason="The analysis waits for the new case management system, which went live late.",
    ),
    MilestoneAnswer(
        "Complete research programme into how best to deliver information",
        "completed",
        date(2022, 3, 25),
        "Research completed into how best to reach migrant workers and their employers with "
        "information about their rights and obligations.",
    ),
    MilestoneAnswer(
        "Bali Process Disruption of People Smuggling",
        "delayed",
        new_period="Quarter 2 2023",
        reason="Working Group members asked for more operations to be included in the compendium.",
    ),
    MilestoneAnswer(
        "MBIE to brief the Minister of Commerce",
        "completed",
        date(2022, 3, 9),
        "The Minister of Commerce and Consumer Affairs was briefed on the plan for New "
        "Zealand's first National Action Plan on Business and Human Rights.",
    ),
    MilestoneAnswer(
        "Maritime people smuggling and trafficking research",
        "delayed",
        new_period="Quarter 1 2023",
        reason="Peer review of the research product took longer than planned.",
    ),
    MilestoneAnswer(
        "Updated people trafficking training available",
        "completed",
        date(2022, 6, 17),
        "Updated people trafficking training is available to all MBIE staff.",
    ),
    MilestoneAnswer(
        "Public consultation on proposals to address modern slavery",
        "completed",
        date(2022, 6, 7),
        "Public consultation on proposals to address modern slavery and worker exploitation "
        "in operations and supply chains was held in April to June 2022.",
    ),
    MilestoneAnswer(
        "Migrant worker protection bill introduced",
        "delayed",
        new_period="Quarter 4 2022",
        reason="Drafting of the bill took longer than planned.",
    ),
    MilestoneAnswer(
        "Accredited Employer Work Visa",
        "completed",
        date(2022, 7, 4),
        "The Accredited Employer Work Visa was introduced.",
    ),
)

VISITS: tuple[Visit, ...] = (
    Visit(
        "MBIE",
        date(2022, 2, 3),
        time(10, 30),
        submit=False,
        milestones=_MBIE_ANSWERS[:2],
        answer_the_rest=False,
        link_from="update_request",
        why="opened its update request and saved a first draft",
    ),
    Visit(
        "INZ",
        date(2022, 9, 16),
        time(14, 0),
        submit=True,
        milestones=(
            MilestoneAnswer(
                "Implementation of joint INZ-ENZ migrant exploitation",
                "completed",
                date(2022, 3, 18),
                "The joint INZ-ENZ model for triaging and reporting migrant exploitation "
                "allegations is in use.",
            ),
            MilestoneAnswer(
                "Network of four INZ Irregular Migration Liaison Officers",
                "delayed",
                new_period="Quarter 1 2023",
                reason="Border restrictions in the region delayed the deployments.",
            ),
            MilestoneAnswer(
                "INZ will complete comprehensive people trafficking investigation review",
                "completed",
                date(2022, 9, 9),
                "INZ completed its review of people trafficking investigations; its "
                "recommendations are being put in place.",
            ),
        ),
        link_from="update_request",
        why="submitted early",
    ),
    Visit(
        "DIA",
        date(2022, 10, 17),
        time(11, 0),
        submit=True,
        achievements=(
            RowAnswer(
                "Undertake awareness raising",
                "Awareness training on people trafficking was delivered to frontline passport "
                "and citizenship staff.",
            ),
        ),
        link_from="update_request",
        why="submitted after the 14-day reminder",
    ),
    Visit(
        "MFAT",
        date(2022, 10, 17),
        time(15, 0),
        submit=True,
        achievements=(
            RowAnswer(
                "Enhance international prevention",
                "New Zealand co-chaired a Bali Process workshop on preventing forced labour in "
                "regional supply chains.",
            ),
        ),
        link_from="update_request",
        why="submitted after the 14-day reminder",
    ),
    Visit(
        "ENZ",
        date(2022, 10, 18),
        time(10, 0),
        submit=True,
        milestones=(
            MilestoneAnswer(
                "The Operating Model to put the principles of the Joint ENZ-INZ",
                "delayed",
                new_period="Quarter 4 2022",
                reason="The operating model is being aligned with the new Migrant Worker "
                "Protection legislation.",
            ),
        ),
        link_from="update_request",
        why="submitted after the 14-day reminder",
    ),
    Visit(
        "OT",
        date(2022, 10, 25),
        time(10, 0),
        submit=True,
        achievements=(
            RowAnswer(
                "Undertake awareness raising",
                "Oranga Tamariki staff completed training on recognising child trafficking.",
            ),
            RowAnswer(
                "Enhance international prevention",
                "Oranga Tamariki shared its child protection practice with Pacific partners.",
            ),
            RowAnswer(
                "Provide for the effective and efficient delivery of support",
                "Oranga Tamariki contributed to the design of support services for child victims.",
            ),
            RowAnswer(
                "Improve our understanding of exploitation",
                "Oranga Tamariki began recording suspected child trafficking in its case "
                "management system.",
            ),
            RowAnswer(
                "Strengthen operational, policy and legislative settings",
                "Oranga Tamariki contributed to the review of legislative settings for child "
                "victims.",
            ),
        ),
        link_from="update_request",
        why="submitted after the 7-day reminder",
    ),
    Visit(
        "NZP",
        date(2022, 10, 25),
        time(14, 0),
        submit=True,
        milestones=(
            MilestoneAnswer(
                "Police plan to deliver awareness-raising training",
                "completed",
                date(2022, 9, 30),
                "Awareness-raising training on people trafficking is now part of the training "
                "of every new Police recruit.",
            ),
        ),
        link_from="update_request",
        why="submitted after the 7-day reminder",
    ),
    Visit(
        "MBIE",
        date(2022, 10, 27),
        time(16, 30),
        submit=True,
        milestones=_MBIE_ANSWERS[2:],
        new_milestones=(
            RowAnswer(
                "Improve our understanding of exploitation",
                "Second annual intelligence assessment of the people trafficking landscape in "
                "New Zealand completed.",
                period="Quarter 2 2023",
            ),
        ),
        link_from="latest",
        why="finished its draft and submitted after the 1-day reminder",
    ),
    # MoJ is late: it answers after the deadline, once escalated.
    Visit(
        "MoJ",
        date(2022, 11, 2),
        time(11, 0),
        submit=True,
        milestones=(
            MilestoneAnswer(
                "Ministry of Justice to further develop the training framework",
                "on_track",
            ),
        ),
        achievements=(
            RowAnswer(
                "Strengthen operational, policy and legislative settings",
                "The Ministry of Justice published guidance for lawyers and police prosecutors "
                "on the Communication Assistance service.",
            ),
        ),
        link_from="latest",
        why="answered late, after the escalation",
    ),
    # Police answer the coordinator's request for changes.
    Visit(
        "NZP",
        date(2022, 11, 3),
        time(10, 0),
        submit=True,
        achievements=(
            RowAnswer(
                "Undertake awareness raising",
                "Every Police recruit wing since July 2022 has completed the people "
                "trafficking awareness module.",
                link_title="Police recruit training",
                link_url="https://www.police.govt.nz/",
            ),
        ),
        link_from="changes_requested",
        why="answered the coordinator's request for changes",
    ),
)

REVIEW = Review(
    changes=ChangeRequest(
        "NZP",
        date(2022, 10, 31),
        time(11, 0),
        "Please add a key achievement saying how many recruit wings have completed the "
        "training, with a link to the Police page about it.",
    ),
    publish_on=date(2022, 11, 7),
    publish_at=time(10, 0),
)

# What the demo checks it showed, at the end (each must have happened at least once).
EXPECTED_KINDS = (
    "update_request",
    "reminder",
    "slipped",
    "escalation",
    "changes_requested",
    "published",
)
