"""Benchmark instances named by short specs: `SCALE[:SEED][:VARIANT]`, `CxO[:SEED][:VARIANT]` or a JSON file.

Variants: `binding` (default: the generator's budgets, which bind), `ample` (money never binds) and `flow` (ample
money and every supervisor with a seat for each slot that may use them, so that the round is a min-cost flow).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from matching.generators.generate import SCALES, generate, generate_scale
from matching.input.instance import Instance, Supervisor
from matching.input.validate import load_instance

VARIANTS = ("binding", "ample", "flow")
# Programme counts and eligibility targets of the named scales, as in the generator (DESIGN.md, Performance);
# repeated here because generate_scale cannot switch budgets to ample.
SCALE_PROGRAMMES = {"regional": 5, "national": 20, "stress": 20}
SCALE_PAIRS = {"stress": 100.0}
# The time limit a scale is benchmarked with unless told otherwise: its target's (DESIGN.md; benchmarks.report.TARGETS).
SCALE_TIME_LIMIT = {"regional": 2.0, "national": 30.0, "stress": 300.0}
DEFAULT_TIME_LIMIT = 10.0
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_SUPERVISOR_MAX = 20  # Supervisor.capacity's upper limit


@dataclass(frozen=True)
class InstanceSpec:
    """Where a benchmark instance comes from."""

    scale: str  # a name in SCALES, "CxO" for custom sizes, or "file"
    seed: int = 0
    variant: str = "binding"
    path: Path | None = None

    @property
    def label(self) -> str:
        """A short name for tables and files."""
        if self.path is not None:
            return self.path.stem
        suffix = "" if self.variant == "binding" else f"-{self.variant}"
        return f"{self.scale}-s{self.seed}{suffix}"

    @property
    def time_limit(self) -> float:
        """The default CP-SAT time limit for this instance's scale."""
        return SCALE_TIME_LIMIT.get(self.scale, DEFAULT_TIME_LIMIT)


def parse_spec(text: str) -> InstanceSpec:
    """An InstanceSpec from `regional:0`, `120x60:3:ample`, `national:1:flow` or `path/to/instance.json`."""
    if text.endswith(".json"):
        return InstanceSpec(scale="file", path=Path(text))
    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise ValueError(f"instance {text!r}: expected SCALE[:SEED][:VARIANT] or a .json file")
    scale = parts[0]
    if scale not in SCALES and not _SIZE.match(scale):
        raise ValueError(f"instance {text!r}: scale must be one of {', '.join(SCALES)} or CANDIDATESxOFFERS")
    seed_text = parts[1] if len(parts) > 1 else "0"
    if not seed_text.isdigit():
        raise ValueError(f"instance {text!r}: seed {seed_text!r} is not a non-negative integer")
    variant = parts[2] if len(parts) > 2 else "binding"
    if variant not in VARIANTS:
        raise ValueError(f"instance {text!r}: variant must be one of {', '.join(VARIANTS)}")
    return InstanceSpec(scale=scale, seed=int(seed_text), variant=variant)


def build_instance(spec: InstanceSpec) -> Instance:
    """The instance a spec names (generated, or read and checked from its file)."""
    if spec.path is not None:
        return load_instance(spec.path.read_bytes())
    if spec.scale in SCALES and spec.variant == "binding":
        return generate_scale(spec.scale, spec.seed)
    candidates, offers = SCALES[spec.scale] if spec.scale in SCALES else _sizes(spec.scale)
    instance = generate(
        candidates,
        offers,
        seed=spec.seed,
        programmes=SCALE_PROGRAMMES.get(spec.scale),
        pairs_per_candidate=SCALE_PAIRS.get(spec.scale),
        binding_budgets=spec.variant == "binding",
    )
    return roomy_supervisors(instance) if spec.variant == "flow" else instance


def _sizes(scale: str) -> tuple[int, int]:
    match = _SIZE.match(scale)
    assert match is not None
    return int(match.group(1)), int(match.group(2))


def roomy_supervisors(instance: Instance) -> Instance:
    """Every supervisor gets a seat for each slot of the offers that list them (up to the allowed 20)."""
    seats: dict[str, int] = {}
    for offer in instance.offers:
        for sid in offer.supervisor_ids:
            seats[sid] = seats.get(sid, 0) + offer.slots
    supervisors = tuple(
        Supervisor.model_validate(
            {**s.model_dump(), "capacity": max(s.capacity, min(_SUPERVISOR_MAX, seats.get(s.id, 0)))}
        )
        for s in instance.supervisors
    )
    return instance.model_copy(update={"supervisors": supervisors})


def write_instance(spec: InstanceSpec, directory: Path) -> Path:
    """Build the instance once and store it as JSON, so that every run loads the same bytes."""
    if spec.path is not None:
        return spec.path
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{spec.label}.json"
    path.write_text(build_instance(spec).model_dump_json(), encoding="utf-8")
    return path
