"""Reading the deployment's own settings files (the sites file, its secrets_file, the inverter
tags): a mistake is reported by file, line and column, never by quoting the file.

PyYAML's messages quote the offending line with a caret under it, and name the tag, alias or
anchor it stumbled on; in a secrets file that line is a password. Such a message would reach
the CLI's output, the run's event log, the compute logs and ops.site_status, so it is replaced
here by one built only from the position and the library's own wording (kept only when it is
plain words: every piece of the file PyYAML or tomllib interpolates comes quoted or bracketed).
Each error is raised outside the `except` block: the parser's exception (which carries the
whole text in its marks) is then neither chained nor kept as context.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from solar_pipeline.settings import InvalidSettingError

# A settings file is a few kilobytes; anything bigger is the wrong file, not settings.
MAX_BYTES = 1 << 20
# Library wording that cannot hold a piece of the file: plain words (PyYAML and tomllib put
# quotes, brackets or parentheses around whatever they interpolate from it).
_PLAIN = re.compile(r"[A-Za-z ,]+")
_TOML_AT = re.compile(
    r"^(?P<problem>.*?) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)$", re.S
)
_NOT_SHOWN = "(the line is not shown: it may hold a secret)"

# What each kind of PyYAML error usually means, for when its own wording is not plain.
_YAML_KINDS: tuple[tuple[type[yaml.YAMLError], str], ...] = (
    (yaml.reader.ReaderError, "a control character or byte YAML does not allow"),
    (
        yaml.scanner.ScannerError,
        "a character YAML cannot read there: an unclosed quote, a tab used for indentation, "
        "an unknown backslash escape in double quotes, or an unquoted value holding ': ' or "
        "' #' (quote such values)",
    ),
    (yaml.parser.ParserError, "broken structure: indentation, or a missing ']', '}' or ':'"),
    (yaml.composer.ComposerError, "an undefined alias (*name) or a repeated anchor (&name)"),
    (
        yaml.constructor.ConstructorError,
        "a value YAML cannot build: an unknown !tag, or a list or mapping used as a key",
    ),
)


def _line_column(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def read_settings_text(path: Path, label: str) -> str:
    """The UTF-8 text of `path`; `label` names it in errors (e.g. `SOLAR_SITES=<path>`)."""
    error: InvalidSettingError | None = None
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        error = InvalidSettingError(f"{label}: no such file")
    except IsADirectoryError:
        error = InvalidSettingError(f"{label} is a directory: name the file itself")
    except PermissionError:
        error = InvalidSettingError(
            f"{label} cannot be read by this user: check its owner and mode"
        )
    except OSError as exc:
        error = InvalidSettingError(f"{label} cannot be read ({exc.strerror})")
    if error is not None:
        raise error
    if len(data) > MAX_BYTES:
        raise InvalidSettingError(
            f"{label} is larger than {MAX_BYTES // 1024} KB: is it the right file?"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Positions from the bytes before the bad one; the byte itself is not shown.
        before = data[: exc.start].decode("utf-8", "replace")
        line, col = _line_column(before, len(before))
        error = InvalidSettingError(
            f"{label} is not UTF-8 text: line {line}, column {col}; save it as UTF-8 {_NOT_SHOWN}"
        )
    raise error


def _yaml_message(label: str, exc: yaml.YAMLError, text: str) -> str:
    kind = next((k for t, k in _YAML_KINDS if isinstance(exc, t)), "invalid YAML")
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem if exc.problem and _PLAIN.fullmatch(exc.problem) else kind
        began = exc.context_mark if exc.problem_mark and exc.context_mark else None
    else:  # ReaderError: an offset into the text
        mark, problem, began = None, kind, None
    if mark is not None:
        where = f"line {mark.line + 1}, column {mark.column + 1}"
    elif isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.position, int):
        where = "line {}, column {}".format(*_line_column(text, exc.position))
    else:
        where = "an unknown position"
    if began is not None and began.line != mark.line:  # type: ignore[union-attr]
        where += f" (in what begins on line {began.line + 1})"
    return f"{label} is not valid YAML: {where}: {problem} {_NOT_SHOWN}"


def load_yaml_settings(path: Path, label: str) -> Any:
    """The YAML document of `path` (None when empty), with errors that never quote it."""
    text = read_settings_text(path, label)
    message: str | None = None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        message = _yaml_message(label, exc, text)
    except RecursionError:
        message = f"{label} is nested too deeply to be settings"
    raise InvalidSettingError(message)


def load_toml_settings(path: Path, label: str) -> dict[str, Any]:
    """The TOML document of `path`, with errors that never quote it."""
    text = read_settings_text(path, label)
    message: str | None = None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_AT.match(str(exc))
        problem = found["problem"] if found and _PLAIN.fullmatch(found["problem"]) else None
        where = (
            f"line {found['line']}, column {found['col']}"
            if found and found["line"]
            else "the end of the file"
        )
        message = f"{label} is not valid TOML: {where}: {problem or 'invalid TOML'} {_NOT_SHOWN}"
    except RecursionError:
        message = f"{label} is nested too deeply to be settings"
    raise InvalidSettingError(message)
