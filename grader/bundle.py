"""A student bundle: everything an assignment's public checks need to judge, as one versioned JSON file.

``grader release`` (``grader.release``) writes it from the instructor's assignment; a student's
install reads it (``read_bundle``) and grades the public checks from it alone, with the same
``judge_with`` code the instructor's grader runs, so the statuses, scores and diagnoses are the
same as the instructor's ``grade --public`` on every check it judges. It holds, for each check, its
declaration without the instructor's code (fields marked ``grader.checks.INSTRUCTOR_ONLY`` stay
behind: the reference, the misconceptions' variants, the inputs' designs, the diagnoses that state
an answer), its public calls, and what a student may hold of its judging data on them
(``Check.released_data``): the expected results and the misconceptions' results sealed
(``grader.seal``: they confirm a result within the tolerance and state no number), and nothing for
a check whose data would state its answer (the reference's learned widths: not self-checked). Grading
inputs come from the instructor's secret, and hidden calls never repeat public ones
(``grader.assignment.draw_calls``).

Reading checks every field against the dataclass it belongs to and names the first one that is
wrong (``BundleError``). Custom checks name their verdict, which the assignment's
``verdicts.py`` provides on the student's install (see ``grader.assignment.public_verdicts``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .version import __version__
from .assignment import Assignment, Exercise, public_verdicts
from .installed import ASSIGNMENTS_DIR, notebook_assignment
from .checks import RECOGNISERS, Call, Check, CustomCheck, CustomVerdict, Recogniser, SealedValueData, ValueCheck
from .curves import Curve, TabulatedCurve
from .errors import BundleError
from .i18n import Message, _, join_list
from .model import Value
from .wire import Malformed, array, encode_array, encode_value, number, parse_value

BUNDLE_FORMAT = "attention-grader-bundle"
# Raised whenever a field changes meaning; a reader refuses any other version. 3: expected results sealed
# (grader.seal), no data for a check that is not self-checked, the release's id. 4: values and arrays in
# grader.wireformat's form (numbers as base64 bytes with their dtype and shape).
BUNDLE_VERSION = 4
BUNDLE_SUFFIX = ".bundle.json"
KINDS: dict[str, type[Check]] = {"value": ValueCheck, "custom": CustomCheck}
DATA_OF_KIND = {"value": lambda check: SealedValueData,
                "custom": lambda check: check.verdict.data_type if check.verdict.self_checked else type(None)}


@dataclass
class BundledCheck(Check):
    """A check as a student's install holds it: its public calls and their judging data, judged by its kind."""

    judged_as: Check = None  # the declaration (a ValueCheck or CustomCheck) whose judge_with gives the verdict
    planned: list[Call] = field(default_factory=list)
    data: Any = None

    @classmethod
    def of(cls, check: Check, calls: list[Call], data: Any) -> BundledCheck:
        return cls(check.id, check.exercise, check.title, check.points, check.hint, check.read, judged_as=check,
                   planned=list(calls), data=data)

    @property
    def kind(self) -> str:
        return next(name for name, kind in KINDS.items() if isinstance(self.judged_as, kind))

    def calls(self, rng):
        return list(self.planned)  # the released public calls, whatever the generator

    def judging_data(self, calls):
        return self.data

    def judge_with(self, calls, data, outcomes):
        return self.judged_as.judge_with(calls, data, outcomes)


@dataclass
class Bundle:
    """A released assignment: what a student's install needs of it, and nothing of the instructor's."""

    name: str
    title: str
    template: str  # the template notebook's file name, released beside the bundle
    exercises: list[Exercise]
    checks: list[BundledCheck]
    template_answers: dict[str, str]  # answer tag -> the template's placeholder text
    answer_points: dict[str, float] = field(default_factory=dict)
    preload: tuple[str, ...] = ()
    cell_timeout: float = 120.0
    budget: float = 600.0
    grader_version: str = __version__
    release: str = ""  # the student package's version this bundle was released with (grader.release)
    grading_environment: tuple[str, ...] = ()  # what the grading kernel provides ("d2l 1.0.3", ...), at release

    def assignment(self, root: Path) -> Assignment:
        """The bundle as an assignment the pipeline grades (``root``: the bundle's folder)."""
        released = Assignment(name=self.name, title=self.title, exercises=list(self.exercises), checks=list(self.checks),
                              template=self.template, preload=self.preload, cell_timeout=self.cell_timeout,
                              budget=self.budget, root=root, answer_points=dict(self.answer_points),
                              template_answers=dict(self.template_answers),
                              grading_environment=tuple(self.grading_environment))
        released.validate()
        return released


# --------------------------------------------------------------------------- the typed codec

class _Invalid(Exception):
    """A value that does not fit its field: where (a path of field names and indices) and why."""

    def __init__(self, where: str, problem: str):
        super().__init__(where, problem)
        self.where, self.problem = where, problem


def _public_fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("instructor_only")]


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))


def _is_union(hint) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def encode(value, hint) -> Any:
    """``value`` of type ``hint`` as JSON-ready data (numbers that JSON cannot hold are spelled, as in grader.wire)."""
    if _is_union(hint):
        if value is None:
            return None
        members = [m for m in typing.get_args(hint) if m is not type(None)]
        return encode(value, next((m for m in members if _fits(value, m)), members[0]))
    origin = typing.get_origin(hint) or hint
    if hint is type(None):  # a check that is not self-checked: no data
        if value is not None:
            raise TypeError("data where none may be released")
        return None
    if hint is float:
        return number_json(float(value))
    if hint in (int, str, bool):
        return value
    if hint is np.ndarray:
        return encode_array(value)
    if hint is Value:
        return encode_value(value)
    if hint is Message:
        return {"msgid": value.msgid, "values": {k: _plain(v) for k, v in value.values.items()}}
    if hint in (Recogniser, CustomVerdict):
        return value.name
    if hint is Curve:
        return encode(value.tabulated(), TabulatedCurve)
    if origin in (tuple, list):
        args = typing.get_args(hint)
        if not args:  # a call's arguments: wire values
            return [encode_value(v) for v in value]
        return [encode(v, args[0]) for v in value]
    if origin is dict:
        return {str(k): encode(v, typing.get_args(hint)[1]) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        return {f.name: encode(getattr(value, f.name), hints[f.name]) for f in _public_fields(hint)}
    raise TypeError(f"cannot release a {hint!r}")


def number_json(value: float):
    return value if np.isfinite(value) else ("nan" if np.isnan(value) else ("inf" if value > 0 else "-inf"))


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return number_json(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError(f"cannot release a {type(value).__name__} as a plain value")


def _fits(value, hint) -> bool:
    origin = typing.get_origin(hint) or hint
    if hint is Curve:
        return isinstance(value, Curve)
    return isinstance(value, origin) if isinstance(origin, type) else False


def decode(raw, hint, where: str, verdicts: dict[str, CustomVerdict]) -> Any:
    """JSON data back into ``hint``, every field checked; raises _Invalid naming the first that is wrong."""
    if _is_union(hint):
        members = typing.get_args(hint)
        if raw is None and type(None) in members:
            return None
        problems = []
        for member in (m for m in members if m is not type(None)):
            try:
                return decode(raw, member, where, verdicts)
            except _Invalid as exc:
                problems.append(exc)
        raise problems[-1] if len(problems) == 1 else _Invalid(where, _("none of the forms this field takes"))
    origin = typing.get_origin(hint) or hint
    if hint is type(None):
        if raw is not None:
            raise _Invalid(where, _("expected null"))
        return None
    if hint is float:
        value = number(raw)
        if value is None:
            raise _Invalid(where, _("expected a number"))
        return value
    if hint is int:
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise _Invalid(where, _("expected a whole number"))
        return raw
    if hint in (str, bool):
        if not isinstance(raw, hint):
            raise _Invalid(where, _("expected text") if hint is str else _("expected true or false"))
        return raw
    if hint is np.ndarray:
        value = array(raw)
        if value is None:
            raise _Invalid(where, _value_expected())  # a float64 array is a value of kind "array"
        return value
    if hint is Value:
        return _value_back(raw, where)
    if hint is Message:
        if not isinstance(raw, dict) or not isinstance(raw.get("msgid"), str) or not isinstance(raw.get("values"), dict):
            raise _Invalid(where, _("expected a text ({\"msgid\": ..., \"values\": {...}})"))
        return Message(raw["msgid"], **{str(k): _plain_back(v, f"{where}.values.{k}") for k, v in raw["values"].items()})
    if hint is Recogniser:
        if raw not in RECOGNISERS:
            raise _Invalid(where, _("no recogniser named %(name)r in this grader", name=raw))
        return RECOGNISERS[raw]
    if hint is CustomVerdict:
        if raw not in verdicts:
            raise _Invalid(where, _("no verdict named %(name)r in this install's assignment (install the student "
                                    "package of the same release)", name=raw))
        return verdicts[raw]
    if hint is Curve:
        return decode(raw, TabulatedCurve, where, verdicts)
    if origin in (tuple, list):
        if not isinstance(raw, list):
            raise _Invalid(where, _("expected a list"))
        args = typing.get_args(hint)
        if not args:
            items = [_value_back(v, f"{where}[{i}]") for i, v in enumerate(raw)]
        else:
            items = [decode(v, args[0], f"{where}[{i}]", verdicts) for i, v in enumerate(raw)]
        return origin(items)
    if origin is dict:
        if not isinstance(raw, dict):
            raise _Invalid(where, _("expected an object"))
        return {str(k): decode(v, typing.get_args(hint)[1], f"{where}.{k}", verdicts) for k, v in raw.items()}
    if dataclasses.is_dataclass(hint):
        if not isinstance(raw, dict):
            raise _Invalid(where, _("expected an object"))
        hints, public = _hints(hint), _public_fields(hint)
        unknown = sorted(set(raw) - {f.name for f in public})
        if unknown:
            raise _Invalid(f"{where}.{unknown[0]}", _("not a field of %(kind)s", kind=hint.__name__))
        values = {}
        for f in public:
            if f.name not in raw:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise _Invalid(f"{where}.{f.name}", _("missing"))
                continue
            values[f.name] = decode(raw[f.name], hints[f.name], f"{where}.{f.name}", verdicts)
        try:
            return hint(**values)
        except (TypeError, ValueError) as exc:
            raise _Invalid(where, str(exc)) from None
    raise _Invalid(where, f"cannot read a {hint!r}")


def _plain_back(raw, where: str):
    if raw is None or isinstance(raw, (bool, int, str)):
        return raw
    value = number(raw)
    if value is None:
        raise _Invalid(where, _("expected a number, text, true, false or null"))
    return value


def _value_back(raw, where: str):
    try:
        return parse_value(raw)
    except Malformed:
        raise _Invalid(where, _value_expected()) from None


def _value_expected() -> str:
    return _("expected a value ({\"kind\": ..., ...}, as grader.probe_runtime writes one)")


# --------------------------------------------------------------------------- the file

ASSIGNMENT_FIELDS = ("name", "title", "template", "exercises", "template_answers", "answer_points", "preload",
                     "cell_timeout", "budget", "grader_version", "release", "grading_environment")


def bundle_json(bundle: Bundle) -> str:
    hints = _hints(Bundle)
    checks = []
    for check in bundle.checks:
        kind = check.kind
        try:
            checks.append({"kind": kind, "check": encode(check.judged_as, KINDS[kind]),
                           "calls": [encode(call, Call) for call in check.planned],
                           "data": encode(check.data, DATA_OF_KIND[kind](check.judged_as))})
        except TypeError as exc:
            raise BundleError(_("%(check)s cannot be released: %(reason)s", check=check.id, reason=exc)) from None
    data = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
            "assignment": {name: encode(getattr(bundle, name), hints[name]) for name in ASSIGNMENT_FIELDS},
            "checks": checks}
    return json.dumps(data, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def parse_bundle(text: str, source: str, verdicts_of=None) -> Bundle:
    """A bundle from its JSON text; ``source`` names it in errors; ``verdicts_of(name)`` finds an assignment's verdicts."""
    def fail(where: str, problem: str):
        raise BundleError(_("%(file)s: %(where)s: %(problem)s", file=source, where=where, problem=problem))

    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BundleError(_("%(file)s is not a bundle (not JSON: %(reason)s)", file=source, reason=exc)) from None
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise BundleError(_("%(file)s is not a bundle of this grader (its \"format\" is not %(format)r)", file=source,
                            format=BUNDLE_FORMAT))
    if data.get("version") != BUNDLE_VERSION:
        raise BundleError(_("%(file)s is a bundle of format version %(found)s; this grader reads version %(version)s. "
                            "Install the student package released with it.", file=source, found=data.get("version"),
                            version=BUNDLE_VERSION))
    info, checks = data.get("assignment"), data.get("checks")
    if not isinstance(info, dict):
        fail("assignment", _("expected an object"))
    if not isinstance(checks, list):
        fail("checks", _("expected a list"))
    hints = _hints(Bundle)
    required = [f.name for f in dataclasses.fields(Bundle) if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING and f.name in ASSIGNMENT_FIELDS]
    for name in required:
        if name not in info:
            fail(f"assignment.{name}", _("missing"))
    try:
        fields = {name: decode(info[name], hints[name], f"assignment.{name}", {}) for name in ASSIGNMENT_FIELDS
                  if name in info}
    except _Invalid as exc:
        fail(exc.where, exc.problem)
    verdicts: dict[str, CustomVerdict] = {}
    if any(isinstance(entry, dict) and entry.get("kind") == "custom" for entry in checks):
        try:
            verdicts = (verdicts_of or installed_verdicts)(fields["name"])
        except (OSError, ValueError, ImportError) as exc:
            raise BundleError(_("%(file)s: its custom checks need the verdicts of assignment %(name)r, which this "
                                "install does not have (%(reason)s)", file=source, name=fields["name"],
                                reason=exc)) from None
    released = []
    for index, entry in enumerate(checks):
        where = f"checks[{index}]"
        try:
            if not isinstance(entry, dict) or entry.get("kind") not in KINDS:
                raise _Invalid(f"{where}.kind", _("expected one of %(kinds)s", kinds=join_list(KINDS)))
            kind = entry["kind"]
            check = decode(entry.get("check"), KINDS[kind], f"{where}.check", verdicts)
            if kind == "custom" and not isinstance(check.verdict, CustomVerdict):
                raise _Invalid(f"{where}.check.verdict", _("missing"))
            calls = decode(entry.get("calls"), list[Call], f"{where}.calls", verdicts)
            judging = decode(entry.get("data"), DATA_OF_KIND[kind](check), f"{where}.data", verdicts)
        except _Invalid as exc:
            fail(exc.where, exc.problem)
        if kind == "value" and len(judging.cases) != len(calls) or kind == "value" and any(
                len(case.wrong) != len(check.misconceptions) for case in judging.cases):
            fail(f"{where}.data", _("its cases do not match the check's calls and misconceptions"))
        released.append(BundledCheck.of(check, calls, judging))
    return Bundle(checks=released, **fields)


def assignment_folder(name: str) -> Path:
    """Where this install keeps assignment ``name``'s public part (verdicts.py, catalogs): the instructor's folder
    when it is loaded, else ``assignments/<name>/`` beside the grader package (as a student package installs it)."""
    package = sys.modules.get(f"grader_assignment_{name}")
    locations = list(getattr(package, "__path__", []) or [])
    return Path(locations[0]) if locations else ASSIGNMENTS_DIR / name


def installed_verdicts(name: str) -> dict[str, CustomVerdict]:
    return public_verdicts(assignment_folder(name), name)


def write_bundle(bundle: Bundle, path: Path) -> None:
    path.write_text(bundle_json(bundle), encoding="utf-8")


def read_bundle(path: str | Path) -> Bundle:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(_("cannot read the bundle %(file)s: %(reason)s", file=path, reason=exc)) from None
    return parse_bundle(text, str(path))


def load_bundle(path: str | Path) -> Assignment:
    """The released assignment of the bundle at ``path``, ready for the pipeline (its folder is its root)."""
    path = Path(path)
    return read_bundle(path).assignment(path.resolve().parent)


def find_bundle(near: Path) -> Path | None:
    """The bundle (``*.bundle.json``) for the notebook ``near`` (or in the folder ``near``): the only one there, else
    the one of the assignment the notebook's metadata names, else the one named after the notebook (a course
    releases several assignments into one folder). None when there is none."""
    folder = near if near.is_dir() else near.parent
    found = sorted(folder.glob("*" + BUNDLE_SUFFIX))
    if len(found) > 1 and not near.is_dir():
        for name in (notebook_assignment(near), near.stem):
            chosen = [path for path in found if name and path.name == f"{name}{BUNDLE_SUFFIX}"]
            if chosen:
                return chosen[0]
    if len(found) > 1:
        raise BundleError(_("several bundles in %(folder)s (%(names)s): name one with --bundle (or bundle=)",
                            folder=folder, names=join_list([p.name for p in found])))
    return found[0] if found else None
