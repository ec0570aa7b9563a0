"""Generate a large plan of action in the published text format, for benchmarks.

The output reads like the real 2021 report (`models/data/nz-plan-of-action-2021.txt`) at any
size: a title and introduction, 3–6 pillars, objectives of about ten actions each (new actions
``N1*.`` with their footnote, an action incorporated into another), and per objective the
year's report: active agencies, an optional intro paragraph, key achievements with link lines,
areas for further work and upcoming milestones with every period shape the importer reads
(quarters, quarter ranges, months, years, "(Delayed from …)"), "None identified at this
stage." here and there, macrons and "&", and the first objective's quirk of dated milestone
bullets under "Areas for further work" without an "Upcoming milestones" heading. Most
milestones name their lead agency's acronym in their text, so lead inference has work to do.

The same arguments always give the same text (all randomness comes from ``seed``).

Acronyms are letters only (``GAA``, ``GAB`` …): the published format's ``Full Name (ACR)``
does not allow digits in an acronym.

    python -m bench.generate_plan --agencies 200 --actions 2000 --milestones 20000 -o /tmp/big.txt
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

PILLARS = (
    "Prevention",
    "Protection",
    "Enforcement",
    "Partnership & Research",
    "Te Ao Māori",
    "Pacific Cooperation",
)

_AGENCY_KINDS = ("Ministry of", "Department of", "Office of", "Te Tari", "Authority for")
_TOPICS = (
    "Business",
    "Employment",
    "Justice",
    "Health & Safety",
    "Māori Development",
    "Pacific Peoples",
    "Education",
    "Housing",
    "Transport",
    "Primary Industries",
    "Conservation",
    "Social Development",
    "Tāmaki Makaurau Services",
    "Whānau Ora",
    "Customs & Borders",
)
_VERBS = (
    "deliver",
    "publish",
    "review",
    "complete",
    "launch",
    "consult on",
    "pilot",
    "evaluate",
    "extend",
    "design",
)
_OBJECTS = (
    "the people trafficking training programme",
    "guidance for employers & recruiters",
    "the migrant worker information campaign",
    "a supply chain transparency framework",
    "the victim support referral pathway",
    "resources for whānau and communities in Aotearoa",
    "an information sharing agreement with Pacific partners",
    "the joint compliance & enforcement strategy",
    "research on forced labour in Tāmaki Makaurau",
    "a report of concern data analysis",
    "training for front-line staff in Ōtautahi",
    "the modern slavery reporting model",
)
_QUALIFIERS = (
    "with community stakeholders",
    "across all regions",
    "in te reo Māori and 12 other languages",
    "alongside civil society & business",
    "for Pacific and Asian communities",
    "as part of the annual work programme",
    "to improve victim identification",
    "in collaboration with international partners",
)
_SITES = (
    "Employment.govt.nz",
    "Immigration.govt.nz",
    "Justice.govt.nz",
    "Procurement.govt.nz",
    "Te Puni Kōkiri",
    "Oranga Tamariki",
)
_OBJECTIVE_VERBS = (
    "Undertake",
    "Strengthen",
    "Improve",
    "Enhance",
    "Prevent",
    "Support",
    "Build",
    "Eliminate",
)

FOOTNOTE = (
    "*New actions (added after the Plan of Action was published) have been numbered "
    "differently (i.e. ‘N1’, ‘N2’), to ensure our reporting still aligns with the Plan of "
    "Action numbering."
)
NONE_IDENTIFIED = "- None identified at this stage."


@dataclass(frozen=True)
class GeneratedAgency:
    name: str
    acronym: str


def _letters(index: int, width: int) -> str:
    out = []
    for _ in range(width):
        index, digit = divmod(index, 26)
        out.append(chr(ord("A") + digit))
    return "".join(reversed(out))


def make_agencies(count: int) -> list[GeneratedAgency]:
    """``count`` agencies with unique full names and unique letter-only acronyms."""
    width = max(2, math.ceil(math.log(max(count, 2), 26)))
    agencies = []
    for i in range(count):
        kind = _AGENCY_KINDS[i % len(_AGENCY_KINDS)]
        topic = _TOPICS[(i // len(_AGENCY_KINDS)) % len(_TOPICS)]
        agencies.append(
            GeneratedAgency(name=f"{kind} {topic} {i + 1}", acronym=f"G{_letters(i, width)}")
        )
    return agencies


def _split(total: int, parts: int, rng: random.Random, empty_share: float = 0.0) -> list[int]:
    """``total`` spread over ``parts`` unevenly (some parts empty when ``empty_share`` > 0)."""
    if parts <= 0:
        return []
    weights = [0.0 if rng.random() < empty_share else rng.uniform(0.5, 1.5) for _ in range(parts)]
    if not any(weights):
        weights[0] = 1.0
    scale = sum(weights)
    counts = [int(total * w / scale) for w in weights]
    # Hand out the rounding remainder to the weighted parts, in a seeded order.
    remainder = total - sum(counts)
    eligible = [i for i, w in enumerate(weights) if w > 0]
    for i in range(remainder):
        counts[eligible[i % len(eligible)]] += 1
    return counts


def _upper_first(text: str) -> str:
    # Not str.capitalize(): that would lower-case "Pacific" and "Ōtautahi".
    return text[:1].upper() + text[1:]


def _sentence(rng: random.Random) -> str:
    return f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_QUALIFIERS)}"


def _period(rng: random.Random, year: int) -> str:
    """A due period in one of the shapes published reports use, mostly after ``year``."""
    y = year + rng.choice((1, 1, 1, 2, 2, 3))
    shape = rng.random()
    if shape < 0.40:
        return f"Quarter {rng.randint(1, 4)} {y}"
    if shape < 0.50:
        return f"Q{rng.randint(1, 4)} {y}"
    if shape < 0.75:
        return f"{rng.choice(MONTHS)} {y}"
    if shape < 0.87:
        return str(y)
    first = rng.randint(1, 3)
    return f"Quarter {first}-{rng.randint(first + 1, 4)} {y}"


def _earlier_period(rng: random.Random, year: int) -> str:
    shape = rng.random()
    if shape < 0.35:
        return f"Q{rng.randint(1, 4)} {year}"
    if shape < 0.6:
        return f"Quarter {rng.randint(1, 4)} {year}"
    if shape < 0.8:
        return f"{rng.choice(MONTHS)} {year}"
    return str(year)


def _link(rng: random.Random, serial: int) -> str:
    title = f"{_upper_first(rng.choice(_OBJECTS))} {serial}"
    if rng.random() < 0.2:
        return f"{title}(external link)"
    return f"{title}(external link) — {rng.choice(_SITES)}"


def _milestone_lines(
    rng: random.Random, year: int, active: list[GeneratedAgency], serial: int
) -> list[str]:
    text = _sentence(rng)
    roll = rng.random()
    if roll < 0.75:
        lead = rng.choice(active)
        text = f"{lead.acronym} will {text}"
    elif roll < 0.85:
        lead = rng.choice(active)
        text = f"{_upper_first(text)}, led by {lead.acronym}"
    else:
        # No agency named: the importer falls back to the objective's first active agency.
        text = _upper_first(text)
    # The serial keeps milestone texts unique, as real ones are: the importer matches a
    # milestone by its objective and text.
    text = f"{text}, stage {serial}"
    if rng.random() < 0.15:
        text = f"{text} (Delayed from {_earlier_period(rng, year)})"
    text += "."
    due = "Ongoing" if rng.random() < 0.005 else _period(rng, year)
    lines = [f"- {due} – {text}"]
    if rng.random() < 0.05:
        lines.append(_link(rng, serial))
    return lines


def _blocks(
    rng: random.Random, count: int, serial: int, agencies: list[GeneratedAgency]
) -> list[str]:
    if count == 0:
        return [NONE_IDENTIFIED]
    lines = []
    for i in range(count):
        who = rng.choice(agencies).acronym
        text = f"{who} has begun to {_sentence(rng)}."
        if i and rng.random() < 0.1:
            lines.append(text)  # a paragraph, not a bullet
        else:
            lines.append(f"- {text}")
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
            serial += 1
            lines.append(_link(rng, serial))
    return lines


def generate_report_text(
    agencies: int = 200,
    actions: int = 2000,
    milestones: int = 20000,
    seed: int = 1,
    year: int = 2021,
) -> str:
    """A plan with these many agencies, actions and milestones, in the published text format.

    Every agency is active in at least one objective (given at least as many objectives as
    agencies are spread over); objectives have about ten actions each."""
    if agencies < 1 or actions < 1 or milestones < 0:
        raise ValueError("need at least one agency and one action, and milestones >= 0")
    rng = random.Random(seed)
    all_agencies = make_agencies(agencies)
    n_objectives = max(min(actions, 3), math.ceil(actions / 10))
    n_pillars = min(rng.randint(3, 6), n_objectives)
    objectives_per_pillar = _split(n_objectives - n_pillars, n_pillars, rng)
    objectives_per_pillar = [n + 1 for n in objectives_per_pillar]
    actions_per_objective = [n + 1 for n in _split(actions - n_objectives, n_objectives, rng)]
    milestones_per_objective = _split(
        milestones, n_objectives, rng, empty_share=0.05 if n_objectives > 3 else 0.0
    )

    # Spread agencies over objectives so each appears somewhere, plus a few extra each.
    active_sets: list[list[GeneratedAgency]] = [[] for _ in range(n_objectives)]
    for i, agency in enumerate(all_agencies):
        active_sets[i % n_objectives].append(agency)
    for chosen in active_sets:
        extras = rng.randint(0 if chosen else 1, 3)
        for extra in rng.sample(all_agencies, k=min(len(all_agencies), extras)):
            if extra not in chosen:
                chosen.append(extra)

    out: list[str] = [
        "Plan of action implementation reports",
        "The Plan of Action provides a high-level framework for the actions that government "
        f"agencies will undertake over 5 years to {year + 4} to contribute to eliminating "
        "forced labour, people trafficking & slavery in Aotearoa New Zealand.",
        f"This generated plan has {agencies} agencies, {actions} actions and {milestones} "
        f"milestones (seed {seed}); below is information to guide you as you read it.",
        f"The Plan of Action structures government actions into {n_pillars} broad pillars:",
    ]
    out += [f"- Actions under {PILLARS[p]};" for p in range(n_pillars)]

    action_number = 0
    new_number = 0
    objective_index = 0
    link_serial = 0
    incorporated_done = False
    for p in range(n_pillars):
        out.append(PILLARS[p])
        for _ in range(objectives_per_pillar[p]):
            k = objective_index
            objective_index += 1
            out.append(
                f"{_OBJECTIVE_VERBS[k % len(_OBJECTIVE_VERBS)]} "
                f"{_OBJECTS[k % len(_OBJECTS)]} (objective {k + 1})"
            )
            out.append("Actions")
            n_actions = actions_per_objective[k]
            # Every 40th objective, and the last if none did, ends in a new, footnoted action.
            has_new = n_actions > 1 and (
                k % 40 == 39 or (k == n_objectives - 1 and new_number == 0)
            )
            footnote = False
            for a in range(n_actions):
                if has_new and a == n_actions - 1:
                    new_number += 1
                    out.append(f"N{new_number}*. Recognise and {_sentence(rng)}.")
                    footnote = True
                    continue
                action_number += 1
                if not incorporated_done and action_number > 20 and a > 0:
                    incorporated_done = True
                    out.append(
                        f"{action_number}. Action {action_number} has been incorporated into "
                        f"Action {action_number - 1}.(Continue to {_sentence(rng)}.)"
                    )
                    continue
                out.append(f"{action_number}. {_upper_first(_sentence(rng))}.")
            if footnote:
                out.append(FOOTNOTE)

            report_case = "Report" if k % 3 == 0 else "report"
            out.append(f"Annual implementation {report_case} {year}")
            active = active_sets[k]
            out.append("Active agencies – " + ", ".join(f"{a.name} ({a.acronym})" for a in active))
            if rng.random() < 0.2:
                out.append(f"Work under this objective continued across {len(active)} agencies.")
            out.append("Key achievements")
            out += _blocks(rng, rng.choice((0, 2, 3, 4, 5)), link_serial, active)
            link_serial += 10
            out.append("Areas for further work")
            out += _blocks(rng, rng.choice((0, 1, 2, 3)), link_serial, active)
            link_serial += 10
            if k:
                out.append("Upcoming milestones")
            # else: as in the real 2021 report, the first objective's dated milestone bullets
            # follow "Areas for further work" without their own heading.
            if milestones_per_objective[k] == 0:
                out.append(NONE_IDENTIFIED)
            for _ in range(milestones_per_objective[k]):
                link_serial += 1
                out += _milestone_lines(rng, year, active, link_serial)
    out.append(f"Last updated: 19 January {year + 1}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generate_plan",
        description="Write a large plan of action in the published text format.",
    )
    parser.add_argument("--agencies", type=int, default=200)
    parser.add_argument("--actions", type=int, default=2000)
    parser.add_argument("--milestones", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--year", type=int, default=2021)
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    text = generate_report_text(
        agencies=args.agencies,
        actions=args.actions,
        milestones=args.milestones,
        seed=args.seed,
        year=args.year,
    )
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(text.encode('utf-8')):,} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
