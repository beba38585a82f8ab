"""What ``--help`` shows, and how it is shown fast.

* :func:`light_config_class` reads a command's config dataclass from its module's **source** (``ast``), without
  importing the module: ``rewardlab CMD --help`` then needs neither torch nor transformers (the train module imports
  both; importing it took ~3 s here). The stand-in has the same field names, types and defaults; when a field's
  default is not a literal, the real module is imported instead. A test checks both give the same help.
* :func:`field_comments` / :func:`field_sections`: each field's documentation is its trailing ``# comment`` (else
  the ``#`` block right above it), and a one-word comment line opening a block (``# data``,
  ``# optimisation``) starts a section; ``--help`` lists the options by section.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import io
import textwrap
import tokenize
import typing
from pathlib import Path

SOURCE_ATTR = "__rewardlab_source__"
HELP_ATTR = "__rewardlab_help__"
# modules a config's annotations and bases may come from that import neither torch nor transformers
LIGHT_MODULES = (
    "rewardlab.core.bounds",
    "rewardlab.core.contract_options",
    "rewardlab.core.device",
    "rewardlab.multiobjective.options",
)
HEADER_MAX_WORDS = 1


def _module_file(module: str) -> Path | None:
    """The source file of ``rewardlab.x.y`` found without importing ``rewardlab.x`` (whose ``__init__`` may be heavy)."""
    import rewardlab  # lazy: cli_help is on the light --help start-up path

    parts = module.split(".")
    if parts[0] != "rewardlab":
        return None
    base = Path(rewardlab.__file__).parent.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


_NAMESPACE = {
    **vars(typing),
    "Path": Path,
    "list": list,
    "dict": dict,
    "tuple": tuple,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "None": None,
}


def light_config_class(module: str, name: str):
    """A dataclass standing in for ``module.name`` for ``--help``, built from the source; None when it cannot be
    (then import the real one)."""
    path = _module_file(module)
    if path is None:
        return None
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
        namespace = dict(_NAMESPACE)
        for stmt in tree.body:  # names the annotations may use, from modules light enough to import
            if isinstance(stmt, ast.ImportFrom) and stmt.module in LIGHT_MODULES:
                module_obj = importlib.import_module(stmt.module)
                namespace.update({a.asname or a.name: getattr(module_obj, a.name) for a in stmt.names})
        bases = tuple(namespace[b.id] for b in node.bases)  # a base from elsewhere: KeyError, import the real one
        if not all(dataclasses.is_dataclass(b) for b in bases):
            return None
        fields = []
        for stmt in node.body:
            if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
                continue
            annotation = ast.unparse(stmt.annotation)
            if "ClassVar" in annotation:
                continue
            tp = eval(annotation, namespace)  # noqa: S307 - the package's own annotations
            fields.append((stmt.target.id, tp, _field_default(stmt.value)))
    except (
        OSError,
        SyntaxError,
        StopIteration,
        ValueError,
        NameError,
        TypeError,
        AttributeError,
        KeyError,
        ImportError,
    ):
        return None
    cls = dataclasses.make_dataclass(name, fields, bases=bases)
    for (
        stmt
    ) in node.body:  # literal class constants (REQUIRED, RESUMABLE, ...): rewardlab.commands.preflight reads them
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                setattr(cls, stmt.targets[0].id, ast.literal_eval(stmt.value))
            except ValueError:
                continue
    setattr(cls, SOURCE_ATTR, _segment(source, node))
    setattr(cls, HELP_ATTR, _lazy_registry_help(tree, node, module))
    return cls


def _lazy_registry_help(tree: ast.Module, node: ast.ClassDef, module: str) -> dict:
    """The class's ``HELP`` (field → a function listing that field's registry choices), each entry evaluated
    when the help is printed: its expression runs with the names it uses imported from where the module imports
    them (only those modules load, e.g. ``rewardlab.data.formats`` for ``format_help``)."""
    assign = next(
        (
            s
            for s in node.body
            if isinstance(s, ast.Assign)
            and len(s.targets) == 1
            and getattr(s.targets[0], "id", None) == "HELP"
            and isinstance(s.value, ast.Dict)
        ),
        None,
    )
    if assign is None:
        return {}
    sources = {
        a.asname or a.name: (s.module, a.name)
        for s in tree.body
        if isinstance(s, ast.ImportFrom) and s.module
        for a in s.names
    }

    def entry(expr: ast.expr):
        def listed() -> str:
            namespace: dict = {}
            for name in {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}:
                origin = sources.get(name)
                namespace[name] = getattr(
                    importlib.import_module(origin[0] if origin else module), origin[1] if origin else name
                )
            return eval(compile(ast.Expression(expr), "<HELP>", "eval"), namespace)()  # noqa: S307 - own source

        return listed

    return {k.value: entry(v) for k, v in zip(assign.value.keys, assign.value.values) if isinstance(k, ast.Constant)}


def source_registry(module: str, name: str) -> list[str]:
    """The keys, in order, of the dict literal ``name = {...}`` at the top level of ``module``'s source, read without
    importing the module: ``--help`` lists a registry whose module imports torch (``rewardlab.training.losses.LOSSES``)."""
    path = _module_file(module)
    tree = ast.parse(path.read_text(encoding="utf-8")) if path is not None else ast.Module(body=[])
    for stmt in tree.body:
        if isinstance(stmt, ast.AnnAssign):
            target, value = stmt.target, stmt.value
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == name and isinstance(value, ast.Dict):
            return [k.value for k in value.keys if isinstance(k, ast.Constant)]
    raise LookupError(f"no dict literal {name} at the top of {module}")


def registry_choices(module: str, name: str) -> str:
    """``"one of: a | b | c"``: the names of the registry ``module.name`` (:func:`source_registry`)."""
    return "one of: " + " | ".join(source_registry(module, name))


def registry_help(cls) -> dict:
    """field → a function listing the field's registry choices (the config class's ``HELP``)."""
    light = getattr(cls, HELP_ATTR, None)
    return light if light is not None else getattr(cls, "HELP", {})


def _segment(source: str, node: ast.ClassDef) -> str:
    """The class's whole lines (``ast.get_source_segment`` stops before a last field's trailing comment)."""
    return "\n".join(source.splitlines()[node.lineno - 1 : node.end_lineno]) + "\n"


def _literal(node: ast.expr):
    """A literal, or arithmetic on literals (``4 * 1024 * 1024``)."""
    if all(isinstance(n, (ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)) for n in ast.walk(node)):
        return eval(compile(ast.Expression(node), "<default>", "eval"), {"__builtins__": {}})  # noqa: S307
    return ast.literal_eval(node)


def _field_default(value: ast.expr | None):
    if value is None:
        return dataclasses.field()
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "field":
        kw = {k.arg: k.value for k in value.keywords}
        if "default_factory" in kw:
            factory = {"list": list, "dict": dict, "tuple": tuple}[ast.unparse(kw["default_factory"])]
            return dataclasses.field(default_factory=factory)
        if "default" in kw:
            return dataclasses.field(default=_literal(kw["default"]))
        raise ValueError("field() without a default")
    return dataclasses.field(default=_literal(value))


def class_source(cls) -> str | None:
    source = getattr(cls, SOURCE_ATTR, None)
    if source is not None:
        return textwrap.dedent(source)
    path = _module_file(getattr(cls, "__module__", ""))
    if path is not None:  # cheaper than inspect.getsource (~20 ms a class)
        try:
            text = path.read_text(encoding="utf-8")
            node = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
            return textwrap.dedent(_segment(text, node))
        except (OSError, SyntaxError, StopIteration):
            pass
    import inspect  # lazy: cli_help is on the light --help start-up path

    try:
        return textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return None


def _is_header(text: str) -> bool:
    return 0 < len(text.split()) <= HEADER_MAX_WORDS and not text.endswith((".", ":", ","))


@functools.lru_cache(maxsize=None)
def _read(cls) -> tuple[dict[str, str], dict[str, str]]:
    """(field → documentation, field → section) read from the class source (inherited fields: their class's)."""
    docs: dict[str, str] = {}
    sections: dict[str, str] = {}
    for base in reversed(getattr(cls, "__mro__", ())[1:]):
        if dataclasses.is_dataclass(base):
            base_docs, base_sections = _read(base)
            docs.update(base_docs)
            sections.update(base_sections)
    source = class_source(cls)
    if source is None:
        return docs, sections
    names = {f.name for f in dataclasses.fields(cls)}
    block: list[str] = []
    section = ""
    open_field = None  # the field whose statement is being read: a comment on any of its lines documents it
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, tok in enumerate(tokens):
        if (
            open_field is None
            and tok.type == tokenize.NAME
            and tok.string in names
            and tok.start[1] == 4
            and i + 1 < len(tokens)
            and tokens[i + 1].string == ":"
        ):
            open_field = tok.string
            sections[tok.string] = section
            if block:
                docs[tok.string] = " ".join(block)
            block = []
        elif tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").strip()
            if open_field is not None:  # trailing, also inside a value the formatter wrapped in parentheses
                docs[open_field] = text
            elif tok.line.strip().startswith("#") and tok.start[1] == 4:
                if not block and _is_header(text):
                    section = text
                else:
                    block.append(text)
        elif tok.type == tokenize.NEWLINE:
            open_field = None
        elif tok.type not in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT) and open_field is None:
            block = []
    return docs, sections


def field_comments(cls) -> dict[str, str]:
    """Each dataclass field's documentation: its trailing ``# comment``, else the ``#`` block right above it."""
    return _read(cls)[0]


def field_sections(cls) -> dict[str, str]:
    """Each field's section: the last one-word ``# comment`` line above it ("" before the first)."""
    return _read(cls)[1]
