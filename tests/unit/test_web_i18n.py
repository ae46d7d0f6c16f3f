"""The web app's message catalogues (web/src/messages/, read through
web/src/i18n.js) are complete and used.

Both catalogues have the same keys, each with the same placeholders (and the
same plural forms); every key the sources name exists; and no module but
i18n.js puts a literal where people read it: as a child of ``el()``, as an
``aria-label``, ``title``, ``placeholder`` or ``alt``, as ``textContent``, or
as the text of a toast, a confirmation or an announcement; nor has a literal
that reads like English (a capitalised word, an ellipsis, a dash) outside a
short list of key names. The scanner is a JavaScript tokenizer (strings,
templates, comments, regular expressions), not a grep, so a quote in a
comment or a regular expression does not confuse it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.prereqs import unavailable

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "web" / "src"
NODE = shutil.which("node")

_PLACEHOLDER = re.compile(r"\{(\w+)\}")

# Literals that are not words to translate: key names, key combinations and
# header names, the product's name, symbols.
_ALLOWED = {
    "collab",
    "Enter",
    "Escape",
    "Delete",
    "Backspace",
    "Tab",
    "ArrowDown",
    "ArrowUp",
    "ArrowLeft",
    "ArrowRight",
    "Control+Z",
    "Control+Shift+Z",
    "Ctrl + A",
    "Ctrl + V",
    "Ctrl + Z",
    "Content-Type",
    "Files",
    "Bearer ",
    "+ / −",
    "×",
    "INPUT",
    "TEXTAREA",
    "SELECT",
    "BUTTON",
}

# Where a literal would be read: attribute names, assigned properties, calls.
_TEXT_ATTRIBUTES = {"aria-label", "title", "placeholder", "alt"}
_TEXT_PROPERTIES = {"textContent", "title", "placeholder"}
# (how many of the arguments are text)
_TEXT_CALLS = {"toast": 1, "announce": 1, "confirmDialog": 2, "confirm": 2, "showMessage": 2}
_PUNCT = re.compile(r"\?\.|===|!==|=>|\.\.\.|&&|\|\||\?\?|[-+*/%=<>!&|^~?:;,.()\[\]]=?")
_WORDY = re.compile(r"(?<![A-Za-z])[A-Z][a-z]|…|—")
# A CSS font stack names fonts, not words.
_FONT_STACK = re.compile(r".*sans-serif$")
_LETTER = re.compile(r"[^\W\d_]")


def _tokens(source: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) of a JavaScript source: 'str' (a string, or a
    template's text), 'name', 'punct', 'other'; comments and regular
    expressions are skipped."""
    out: list[tuple[str, str, int]] = []
    i = 0
    n = len(source)
    braces: list[str] = []  # '{' or '`' (inside a template's ${...})

    def line() -> int:
        return source.count("\n", 0, i) + 1

    def regex_allowed() -> bool:
        if not out:
            return True
        kind, text, _ = out[-1]
        if kind == "punct":
            return text not in {")", "]", "}"}
        return kind == "name" and text in {"return", "typeof", "case", "of", "in", "else"}

    def template(start: int) -> int:
        """Scan a template from after its backquote to its end or its next '${'."""
        j = start
        text = []
        while j < n:
            c = source[j]
            if c == "\\":
                text.append(source[j : j + 2])
                j += 2
            elif c == "`":
                out.append(("str", "".join(text), line()))
                return j + 1
            elif c == "$" and source[j + 1 : j + 2] == "{":
                out.append(("str", "".join(text), line()))
                braces.append("`")
                return j + 2
            else:
                text.append(c)
                j += 1
        raise ValueError("unterminated template")

    while i < n:
        c = source[i]
        if c.isspace():
            i += 1
        elif source.startswith("//", i):
            i = source.find("\n", i)
            i = n if i < 0 else i
        elif source.startswith("/*", i):
            i = source.index("*/", i) + 2
        elif c in "'\"":
            j = i + 1
            text = []
            while source[j] != c:
                if source[j] == "\\":
                    text.append(source[j + 1])
                    j += 2
                else:
                    text.append(source[j])
                    j += 1
            out.append(("str", "".join(text), line()))
            i = j + 1
        elif c == "`":
            i = template(i + 1)
        elif c == "/" and regex_allowed():
            j = i + 1
            in_class = False
            while source[j] != "/" or in_class:
                if source[j] == "\\":
                    j += 1
                elif source[j] == "[":
                    in_class = True
                elif source[j] == "]":
                    in_class = False
                j += 1
            i = j + 1
            while i < n and source[i].isalpha():
                i += 1
        elif c.isalpha() or c in "_$":
            m = re.compile(r"[\w$]+").match(source, i)
            assert m
            out.append(("name", m.group(), line()))
            i = m.end()
        elif c.isdigit():
            m = re.compile(r"[\w.]+").match(source, i)
            assert m
            out.append(("other", m.group(), line()))
            i = m.end()
        elif c == "{":
            braces.append("{")
            out.append(("punct", c, line()))
            i += 1
        elif c == "}":
            if braces and braces.pop() == "`":
                i = template(i + 1)
            else:
                out.append(("punct", c, line()))
                i += 1
        else:
            m = _PUNCT.match(source, i)
            out.append(("punct", m.group() if m else c, line()))
            i = m.end() if m else i + 1
    return out


def untranslated(source: str) -> list[tuple[int, str]]:
    """(line, literal) of every literal in `source` that people would read."""
    toks = _tokens(source)
    found: list[tuple[int, str]] = []

    def flag(k: int) -> None:
        kind, text, line = toks[k]
        if kind == "str" and text not in _ALLOWED and _LETTER.search(text):
            found.append((line, text))

    for k, (kind, text, line) in enumerate(toks):
        # A message key: t('chat.title'), t('tool.' + id), worded('error', ...).
        is_key = k >= 2 and toks[k - 1][1] == "(" and toks[k - 2][1] in {"t", "worded"}
        wordy = kind == "str" and bool(_WORDY.search(text)) and not _FONT_STACK.match(text)
        if wordy and not is_key and text not in _ALLOWED:
            found.append((line, text))
        nxt = toks[k + 1] if k + 1 < len(toks) else ("", "", 0)
        # {'aria-label': 'Word'} / {title: 'Word'}
        if text in _TEXT_ATTRIBUTES and nxt[1] == ":" and k + 2 < len(toks):
            flag(k + 2)
        # x.textContent = 'Word'
        after_dot = k > 0 and toks[k - 1][1] == "."
        if kind == "name" and text in _TEXT_PROPERTIES and after_dot and nxt[1] == "=":
            flag(k + 2)
        # toast('Word'), this.confirm('Word', 'Word')
        if kind == "name" and text in _TEXT_CALLS and nxt[1] == "(":
            for j in _arguments(toks, k + 1, _TEXT_CALLS[text]):
                flag(j)
        # el('tag', {...}, 'Word')
        if kind == "name" and text == "el" and nxt[1] == "(" and (k == 0 or toks[k - 1][1] != "."):
            for j in _arguments(toks, k + 1)[1:]:
                flag(j)
    return sorted(set(found))


def _arguments(toks: list[tuple[str, str, int]], open_at: int, first: int = 1_000) -> list[int]:
    """Indexes of the call's arguments that are a single literal, among its `first` arguments."""
    depth = 0
    start = open_at + 1
    args: list[int] = []
    for j in range(open_at, len(toks)):
        t = toks[j][1] if toks[j][0] == "punct" else None
        if t in {"(", "[", "{"}:
            depth += 1
        elif t in {")", "]", "}"}:
            depth -= 1
            if depth == 0:
                if j == start + 1 and toks[start][0] == "str":
                    args.append(start)
                break
        elif t == "," and depth == 1:
            if j == start + 1 and toks[start][0] == "str":
                args.append(start)
            start = j + 1
            first -= 1
            if not first:
                break
    return args


def test_the_scanner_finds_literal_text() -> None:
    sample = """
    // el('p', {}, 'In a comment')
    const re = /it's/g
    el('button', { class: 'primary danger', 'aria-label': 'Close it' }, icon('x'), 'save')
    node.textContent = 'done'
    toast('sent', 'info')
    const s = `Hello ${name}`
    """
    assert sorted(text for _, text in untranslated(sample)) == [
        "Close it",
        "Hello ",
        "done",
        "save",
        "sent",
    ]
    assert untranslated("el('span', { class: 'you' }, t('common.you'), ' ', count)") == []


def test_no_module_but_i18n_has_visible_literals() -> None:
    offenders = {
        path.name: untranslated(path.read_text(encoding="utf-8"))
        for path in sorted(SRC.glob("*.js"))
        if path.name != "i18n.js"
    }
    offenders = {name: found for name, found in offenders.items() if found}
    assert not offenders, f"text outside the catalogues (web/src/messages/): {offenders}"


@pytest.fixture(scope="module")
def catalogues() -> dict[str, dict[str, object]]:
    if NODE is None:
        unavailable("node is not installed (make test installs what the web build needs)")
    script = (
        "const { CATALOGUES } = await import(process.argv[1]);"
        " console.log(JSON.stringify(CATALOGUES))"
    )
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script, (SRC / "i18n.js").as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    result: dict[str, dict[str, object]] = json.loads(done.stdout)
    return result


def _texts(message: object) -> list[object]:
    return list(message.values()) if isinstance(message, dict) else [message]


def _shape(message: object) -> tuple[frozenset[str], frozenset[str]]:
    """A message's plural forms ('' for a plain one) and placeholders."""
    if isinstance(message, dict):
        return frozenset(message), frozenset(
            p for v in message.values() for p in _PLACEHOLDER.findall(v)
        )
    assert isinstance(message, str)
    return frozenset({""}), frozenset(_PLACEHOLDER.findall(message))


def test_both_catalogues_have_the_same_keys_and_placeholders(
    catalogues: dict[str, dict[str, object]],
) -> None:
    assert sorted(catalogues) == ["en", "es"]
    en, es = catalogues["en"], catalogues["es"]
    assert sorted(set(en) ^ set(es)) == []
    differ = {
        key: (_shape(en[key]), _shape(es[key])) for key in en if _shape(en[key]) != _shape(es[key])
    }
    assert not differ
    for key, message in en.items():
        forms, names = _shape(message)
        if forms != {""}:
            assert forms == {"one", "other"} and "count" in names, key
        for text in _texts(message) + _texts(es[key]):
            assert isinstance(text, str) and text.strip(), key


def test_every_key_the_sources_name_exists(catalogues: dict[str, dict[str, object]]) -> None:
    keys = set(catalogues["en"])
    missing = []
    for path in sorted(SRC.glob("*.js")):
        source = path.read_text(encoding="utf-8")
        for key in re.findall(r"\bt\('([\w.]+)'\s*[,)]", source):
            if key not in keys:
                missing.append((path.name, key))
        for key in re.findall(r"\bt\('([\w.]+\.)'\s*\+", source):
            if not any(k.startswith(key) for k in keys):
                missing.append((path.name, key + "*"))
        for prefix, codes in re.findall(r"worded\('(\w+)', \[([^\]]*)\]", source):
            for code in re.findall(r"'(\w+)'", codes):
                if f"{prefix}.{code}" not in keys:
                    missing.append((path.name, f"{prefix}.{code}"))
    assert not missing
