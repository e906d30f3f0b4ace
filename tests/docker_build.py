"""Reading the Dockerfile, .dockerignore and scripts/setup.sh the way Docker and bash would, for tests without Docker.

The Dockerfile is tokenised by dockerfile-parse; what Docker does with the instructions (stages built on stages,
ARG defaults, which files a .dockerignore pattern leaves out) is modelled here, as far as the tests need.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[1]
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][^\s\"'}]*)")
# pip options that take a value as the next word (the word is then not a requirement)
_PIP_VALUE_OPTIONS = {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-c", "-r", "--target", "-t"}


@dataclass
class Stage:
    """One FROM ... AS name section: its base (an image or an earlier stage) and its instructions in order."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, value)

    def values(self, instruction: str) -> list[str]:
        """The values of every `instruction` in this stage, in order."""
        return [value for name, value in self.instructions if name == instruction]

    def args(self) -> dict[str, str]:
        """ARG defaults declared in this stage (Docker does not carry them into stages built on it)."""
        return dict(_assignment(value) for value in self.values("ARG"))


def substitute(text: str, variables: dict[str, str]) -> str:
    """`text` with ${NAME}, ${NAME:-default} and $NAME replaced as Docker does (unknown names: the default or "")."""

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(3)
        return variables.get(name, match.group(2) or "")

    return _VARIABLE.sub(replace, text)


def stages(path: Path = REPO / "Dockerfile") -> dict[str, Stage]:
    """The Dockerfile's stages by name (unnamed ones by index), in file order."""
    parsed = DockerfileParser(str(path)).structure
    global_args: dict[str, str] = {}
    found: dict[str, Stage] = {}
    current: Stage | None = None
    for item in parsed:
        instruction, value = item["instruction"], item["value"]
        if instruction == "COMMENT":
            continue
        if instruction == "FROM":
            words = substitute(value, global_args).split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(found))
            current = found[name] = Stage(name, words[0])
        elif current is None:
            assert instruction == "ARG", f"only ARG may come before the first FROM, found {instruction}"
            global_args.update([_assignment(value)])
        else:
            current.instructions.append((instruction, value))
    return found


def chain(all_stages: dict[str, Stage], name: str) -> list[Stage]:
    """Stage `name` and the stages it is built on, the first one first."""
    line = [all_stages[name]]
    while line[0].base in all_stages:
        line.insert(0, all_stages[line[0].base])
    return line


def effective(all_stages: dict[str, Stage], name: str, instruction: str) -> str | None:
    """The value an image built from `name` keeps for `instruction` (USER, CMD, ...): the last one set, resolved."""
    for stage in reversed(chain(all_stages, name)):
        values = stage.values(instruction)
        if values:
            return substitute(values[-1], stage.args())
    return None


def environment(all_stages: dict[str, Stage], name: str) -> dict[str, str]:
    """The ENV variables an image built from stage `name` has (earlier stages first, later ones win)."""
    env: dict[str, str] = {}
    for stage in chain(all_stages, name):
        for value in stage.values("ENV"):
            env.update(_assignment(word) for word in shlex.split(value))
    return env


def copy_sources(stage: Stage) -> list[tuple[str | None, list[str]]]:
    """(from-stage or None for the build context, sources) of each COPY/ADD in `stage`."""
    copies = []
    for instruction, value in stage.instructions:
        if instruction not in ("COPY", "ADD"):
            continue
        words = shlex.split(value)
        origin = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
        paths = [w for w in words if not w.startswith("--")]
        copies.append((origin, paths[:-1]))
    return copies


def pip_installs(all_stages: dict[str, Stage], name: str) -> list[list[str]]:
    """The words after `pip install` of every RUN that goes into an image built from `name`, in build order.

    Follows COPY --from, so a runtime stage that copies a builder's virtualenv counts that builder's installs.
    """
    installs: list[list[str]] = []
    for stage in chain(all_stages, name):
        for instruction, value in stage.instructions:
            if instruction == "RUN":
                installs += _pip_words(substitute(value, stage.args()))
            elif instruction == "COPY":
                origin = next((w[7:] for w in shlex.split(value) if w.startswith("--from=")), None)
                if origin in all_stages:
                    installs += pip_installs(all_stages, origin)
    return installs


def requirements(words: list[str]) -> list[str]:
    """The requirements (not the options) among the words of one `pip install`."""
    found, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in _PIP_VALUE_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            found.append(word)
    return found


def pins(text: str) -> dict[str, str]:
    """Every name==version in `text` (a requirement word, or bash with ${VAR:-name==version} defaults)."""
    return {name.lower(): version for name, version in _PIN.findall(text)}


def setup_sh_pip_installs(path: Path = REPO / "scripts" / "setup.sh") -> list[str]:
    """Each `pip install` command of scripts/setup.sh, continuation lines joined, as one string."""
    joined = path.read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.split("pip install", 1)[1] for line in joined.splitlines() if "pip install" in line]


def _pip_words(command: str) -> list[list[str]]:
    installs = []
    for part in re.split(r"&&|;|\|\|", command):
        words = shlex.split(part)
        for i in range(len(words) - 1):
            if words[i].rsplit("/", 1)[-1] == "pip" and words[i + 1] == "install":  # pip, python -m pip, /x/pip
                installs.append(words[i + 2 :])
                break
    return installs


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    assert sep or "=" not in name, f"cannot read {text!r} as NAME=value"
    return name.strip(), value.strip().strip('"')


# ---- .dockerignore ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerIgnore:
    """The patterns of a .dockerignore, matched as Docker matches them: the last matching pattern decides."""

    patterns: tuple[tuple[bool, re.Pattern], ...]  # (negated with "!", compiled pattern)

    @classmethod
    def read(cls, path: Path = REPO / ".dockerignore") -> DockerIgnore:
        """Parse a .dockerignore file (comments and blank lines skipped)."""
        patterns = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = line[1:].strip() if negated else line
            patterns.append((negated, re.compile(_glob_regex(pattern.strip("/")))))
        return cls(tuple(patterns))

    def excludes(self, relative: str) -> bool:
        """True when the file or folder at `relative` (to the context root) is left out of the build context."""
        parts = Path(relative).parts
        # A pattern that matches a folder leaves out everything in it.
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for negated, pattern in self.patterns:
            if any(pattern.fullmatch(candidate) for candidate in candidates):
                excluded = not negated
        return excluded


def _glob_regex(pattern: str) -> str:
    # Go's filepath.Match (*, ?, [...]) plus Docker's ** for any number of folders.
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)
