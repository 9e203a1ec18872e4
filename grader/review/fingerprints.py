"""Copied code across a class: winnowed fingerprints of each contract function, as MOSS and copydetect take them.

A function's source is normalised before it is fingerprinted: parsed, its docstrings dropped, the names it binds
itself (arguments, locals, loop variables, nested functions) renamed to one placeholder, then printed again by
``ast.unparse`` (so comments, blank lines, spacing, parentheses and quotes no longer count) and cut into Python
tokens, string literals folded to one token. Hashes of every k tokens in a row are winnowed (the smallest hash of
each window of w, Schleimer, Wilkerson and Aiken 2003), which keeps a match of at least w + k - 1 tokens found
wherever it sits. The template's own fingerprints are subtracted (its stub is everyone's), and so are those most
of the class shares: what every correct solution writes is no evidence of copying.

Our own code rather than copydetect (PyPI, last release March 2024): it fingerprints whole files through pygments
and brings matplotlib, tqdm and pygments with it, while this needs one function of a notebook, Python's own
tokenizer, and the template's fingerprints taken out per function.
"""

from __future__ import annotations

import ast
import hashlib
import io
import itertools
import tokenize
from dataclasses import dataclass

from ..config import CODE_SIMILARITY

K_TOKENS = 5  # tokens per hashed k-gram
WINDOW = 4  # k-grams per winnowing window: a shared run of K_TOKENS + WINDOW - 1 = 8 tokens is always found
COMMON_SHARE = 0.5  # fingerprints in more than this share of the class's versions of a function are left out
PLACEHOLDER = "_v"
# What parsing a student's cell may raise: not Python, a null byte, or nesting deep enough to exhaust the
# recursion limit or the parser's own stack (CPython says MemoryError for that).
UNPARSABLE = (SyntaxError, ValueError, RecursionError, MemoryError)


class _Renamer(ast.NodeTransformer):
    """Renames what a function binds itself; module names, builtins, attribute names (``self.W_q``'s ``W_q``) and
    keyword arguments' names (``dim=-1``) stay as written: they are the callee's, not the student's."""

    def __init__(self, bound: set[str]):
        self.bound = bound

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.bound:
            node.id = PLACEHOLDER
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = PLACEHOLDER
        node.annotation = None
        return node

    def _definition(self, node):
        node.name = PLACEHOLDER
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]  # the docstring
        if hasattr(node, "returns"):
            node.returns = None
        node.decorator_list = []
        self.generic_visit(node)
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _definition



def _bound_names(tree: ast.AST) -> set[str]:
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
    return bound


def normalised_tokens(source: str) -> list[str]:
    """The source as compared: a list of token strings (empty when it does not parse)."""
    try:
        tree = ast.parse(source)
        tree = _Renamer(_bound_names(tree)).visit(tree)
        printed = ast.unparse(ast.fix_missing_locations(tree))
        raw = list(tokenize.generate_tokens(io.StringIO(printed).readline))
    except (*UNPARSABLE, tokenize.TokenError):
        return []
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
    tokens = []
    for token in raw:
        if token.type in skip:
            continue
        if token.type == tokenize.STRING or token.type >= getattr(tokenize, "FSTRING_START", 1 << 30):
            text = "S"
        elif token.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.NEWLINE):
            text = tokenize.tok_name[token.type]
        else:
            text = token.string
        if not (text == "S" and tokens and tokens[-1] == "S"):  # an f-string's pieces are one literal
            tokens.append(text)
    return tokens


def _hash(gram: tuple[str, ...]) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(gram).encode(), digest_size=8).digest(), "big")


def fingerprints(tokens: list[str], k: int = K_TOKENS, window: int = WINDOW) -> frozenset[int]:
    """Winnowing: of each window of ``window`` consecutive k-gram hashes, the smallest."""
    hashes = [_hash(tuple(tokens[i:i + k])) for i in range(len(tokens) - k + 1)]
    if len(hashes) <= window:
        return frozenset(hashes)
    chosen = set()
    for start in range(len(hashes) - window + 1):
        chosen.add(min(hashes[start:start + window]))
    return frozenset(chosen)


def definition_source(source: str, name: str) -> str | None:
    """The source of the last top-level ``def name``/``class name`` in a cell's code (as the notebook ends up
    with it), or None. A cell that does not parse (IPython magics) is read with its magic lines blanked."""
    lines = [line if not line.lstrip().startswith(("%", "!")) else "" for line in source.splitlines()]
    try:
        tree = ast.parse("\n".join(lines))
    except UNPARSABLE:
        return None
    found = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            found = ast.get_source_segment("\n".join(lines), node, padded=True)
            if node.decorator_list:
                first = node.decorator_list[0].lineno - 1
                found = "\n".join(lines[first:node.end_lineno])
    return found


def defined_names(source: str) -> list[str]:
    """The top-level functions and classes a cell defines, in order."""
    try:
        tree = ast.parse("\n".join(line if not line.lstrip().startswith(("%", "!")) else ""
                                   for line in source.splitlines()))
    except UNPARSABLE:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


@dataclass(frozen=True)
class FunctionCode:
    """One student's version of a contract function: where it is, and its fingerprints."""

    submission: str
    function: str
    cell: int  # the notebook's cell index (0-based) holding the definition
    source: str  # the definition as written
    cell_source: str  # the whole cell, shown beside the other student's
    prints: frozenset[int]


@dataclass(frozen=True)
class SimilarPair:
    function: str
    a: FunctionCode
    b: FunctionCode
    similarity: float  # shared fingerprints over the smaller version's (after the template's and the common ones)
    shared: int


def similarity(a: frozenset[int], b: frozenset[int]) -> float:
    """How much of the smaller version the other holds: a copy padded with extra code still scores high."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def similar_pairs(versions: list[FunctionCode], template: frozenset[int] = frozenset(),
                  threshold: float = CODE_SIMILARITY, common_share: float = COMMON_SHARE,
                  min_prints: int = 3) -> list[SimilarPair]:
    """Pairs of one function's versions at or above ``threshold``, most similar first.

    The template's fingerprints are subtracted from each version, then the fingerprints more than ``common_share``
    of the versions hold (with at least four versions: a pair is not "the class"); a version left with fewer
    than ``min_prints`` has too little of its own to compare.
    """
    counts: dict[int, int] = {}
    for v in versions:
        for h in v.prints - template:
            counts[h] = counts.get(h, 0) + 1
    common = {h for h, n in counts.items() if len(versions) >= 4 and n > common_share * len(versions)}
    own = {id(v): v.prints - template - common for v in versions}
    pairs = []
    for a, b in itertools.combinations(versions, 2):
        pa, pb = own[id(a)], own[id(b)]
        if len(pa) < min_prints or len(pb) < min_prints:
            continue
        score = similarity(pa, pb)
        if score >= threshold:
            pairs.append(SimilarPair(a.function, a, b, round(score, 4), len(pa & pb)))
    return sorted(pairs, key=lambda p: (-p.similarity, p.a.submission, p.b.submission))


def function_versions(submission: str, cells: list[str], functions: list[str]) -> list[FunctionCode]:
    """A notebook's versions of the contract's functions, from its code cells (the last definition counts)."""
    found: dict[str, FunctionCode] = {}
    for index, cell in enumerate(cells):
        for name in defined_names(cell):
            if name in functions:
                source = definition_source(cell, name) or ""
                found[name] = FunctionCode(submission, name, index, source, cell,
                                           fingerprints(normalised_tokens(source)))
    return [found[f] for f in functions if f in found]

