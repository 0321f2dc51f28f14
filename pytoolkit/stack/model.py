"""The stack file's schema, defaults and normalisation, as pydantic models.

The single source of what a stack file may say. Every input form a person writes is accepted here and
normalised: defaults filled in, quantities in both forms (`cpu: 500m` and `cpu_millicores: 500`), image
references in their full form. The normalised form is itself valid input and normalises to itself, so
the CLI can write it into the run directory and the playbooks can pass it through the same code again.

Problems found by a validator are raised as `problem(...)` (a PydanticCustomError); `errors.py` turns
the first error of a ValidationError into one sentence naming the source, the key and what is expected.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

from . import image as _image
from . import quantity

JAVA_VERSIONS = (8, 11, 17, 21)
KEYWORDS = ("rdbms", "nosql", "queue")  # what `uses` may name besides apps
DEFAULT_IMAGES: dict[str, str] = {
    "postgresql": "postgres:17",
    "mariadb": "mariadb:11.8",
    "redis": "redis:8",
    "rabbitmq": "rabbitmq:4.0-management",
    "kafka": "apache/kafka:3.9.1",
}
DEFAULT_RESOURCES: dict[str, tuple[str, str]] = {"java": ("1", "512Mi"), "node": ("1", "256Mi")}  # cpu, memory
DEFAULT_JAVA_VERSION: Literal[8, 11, 17, 21] = 8
DEFAULT_NODE_VERSION = 20
DEFAULT_STORAGE = "1Gi"
# Environment keys the wiring sets (docs/stack.md); an app's own `env` may not set them.
RESERVED_ENV = frozenset({
    "PORT", "SERVICE_NAME",
    "DB_URL", "DB_USER", "DB_PASSWORD",
    "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD",
    "QUEUE_KIND", "AMQP_ADDRESSES", "AMQP_USER", "AMQP_PASSWORD", "AMQP_VHOST", "KAFKA_BOOTSTRAP",
})

_APP_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
_SQL_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_REDIS_SIZE = re.compile(r"^[0-9]+(kb|mb|gb)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def problem(message: str, key: str | None = "") -> PydanticCustomError:
    """A validation problem. `key` is appended to the error's location ("" = the location itself);
    None means `message` is a whole sentence that names its keys itself."""
    return PydanticCustomError("toolkit", "{message}", {"message": message, "key": key})


def env_var_name(app_name: str) -> str:
    """The environment prefix of an app's URLs: `front-end` → `FRONT_END` (as in FRONT_END_URLS)."""
    return app_name.upper().replace("-", "_")


# --- field types: a plain Python type after validation, with the checks and messages of the stack file ---

def _text(value: Any) -> Any:
    """Numbers written where a quantity or version string is expected become that string; bools never."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _checked(pattern: re.Pattern[str], expect: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise problem(f"is {value!r}; expected {expect}")
        return value
    return AfterValidator(check)


def _cpu(value: str) -> str:
    try:
        quantity.cpu_millicores(value)
    except ValueError as exc:
        raise problem(f"is {value!r}; expected {exc}") from None
    return value


def _size(value: str) -> str:
    try:
        quantity.size_bytes(value)
    except ValueError as exc:
        raise problem(f"is {value!r}; expected {exc}") from None
    return value


def _image_ref(value: str) -> str:
    try:
        return _image.normalise(value)
    except ValueError as exc:
        raise problem(f"is {value!r}; expected {exc}") from None


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise problem(f"is {value}; expected 1-65535")
    return value


def _at_least(minimum: int) -> AfterValidator:
    def check(value: int) -> int:
        if value < minimum:
            raise problem(f"is {value}; expected an integer >= {minimum}")
        return value
    return AfterValidator(check)


def _nonempty(value: str) -> str:
    if not value.strip() or value != value.strip():
        raise problem(f"is {value!r}; expected a non-empty string without surrounding spaces")
    return value


def _env(value: Any) -> Any:
    """`env`: a mapping of variable names to strings; numbers become strings, nothing else passes."""
    if not isinstance(value, dict):
        return value  # the dict type check names it
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise problem(f"has the key {key!r}; expected environment variable names (letters, digits, '_')")
        item = _text(item)
        if not isinstance(item, str):
            raise problem(f"must be a string or a number, got {item!r}", key=key)
        result[key] = item
    return result


NonEmpty = Annotated[str, AfterValidator(_nonempty)]
AppName = Annotated[str, _checked(_APP_NAME, "a DNS label: lowercase letters, digits and '-', at most 32")]
SqlName = Annotated[str, _checked(_SQL_NAME, "a lowercase SQL identifier")]
Cpu = Annotated[str, BeforeValidator(_text), AfterValidator(_cpu)]
Size = Annotated[str, BeforeValidator(_text), AfterValidator(_size)]
Image = Annotated[str, AfterValidator(_nonempty), AfterValidator(_image_ref)]
Port = Annotated[int, AfterValidator(_port)]
Version = Annotated[str, BeforeValidator(_text), AfterValidator(_nonempty)]


class _Model(BaseModel):
    """Strict (no type coercion: `port: "80"` and `port: yes` are refused), no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid")
    derived: ClassVar[tuple[str, ...]] = ()  # keys computed by the model; accepted as input only when they agree

    @model_validator(mode="before")
    @classmethod
    def _drop_empty(cls, data: Any) -> Any:
        # `key:` with no value in YAML is None: the same as leaving the key out (a required one is "missing").
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data

    def _agree(self, key: str, computed: Any, origin: str, prefix: str = "") -> None:
        """Set derived `key` to `computed`, refusing a different value given in the input. `prefix`: the
        key path from the validating model to this one, for the message."""
        given = getattr(self, key)
        if given is not None and given != computed:
            raise problem(f"is {given!r} but {origin} gives {computed!r}; it is computed: remove it",
                          key=prefix + key)
        setattr(self, key, computed)


class _DataService(_Model):
    """What rdbms, nosql and queue share: a container image (docker, k8s) and a volume size."""

    derived: ClassVar[tuple[str, ...]] = ("storage_bytes",)
    image: Image | None = None
    storage: Size = DEFAULT_STORAGE
    storage_bytes: int | None = None

    def _complete(self, engine: str) -> None:
        if self.image is None:
            self.image = _image.normalise(DEFAULT_IMAGES[engine])
        self._agree("storage_bytes", quantity.size_bytes(self.storage), f"storage {self.storage}")


class Rdbms(_DataService):
    """The relational database. Password: the inventory's toolkit_rdbms_password."""

    engine: Literal["postgresql", "mariadb"]
    database: SqlName
    user: SqlName
    version: Version | None = None

    @model_validator(mode="after")
    def _fill(self) -> Rdbms:
        self._complete(self.engine)
        return self


class Nosql(_DataService):
    """The NoSQL store. Password: the inventory's toolkit_nosql_password."""

    engine: Literal["redis"]
    maxmemory: Annotated[str, _checked(_REDIS_SIZE, "a size such as 128mb")] | None = None

    @model_validator(mode="after")
    def _fill(self) -> Nosql:
        self._complete(self.engine)
        return self


class Queue(_DataService):
    """The message broker. Password: the inventory's toolkit_queue_password (RabbitMQ)."""

    engine: Literal["rabbitmq", "kafka"]
    vhost: NonEmpty = "shop"
    user: NonEmpty = "shop"

    @model_validator(mode="after")
    def _fill(self) -> Queue:
        self._complete(self.engine)
        return self


class Resources(_Model):
    """Limits of one app instance; after App's validation both forms of each are set."""

    derived: ClassVar[tuple[str, ...]] = ("cpu_millicores", "memory_bytes")
    cpu: Cpu | None = None
    memory: Size | None = None
    cpu_millicores: int | None = None
    memory_bytes: int | None = None

    def complete(self, kind: str) -> None:
        """Fill what is absent with the defaults of `kind` and compute the derived forms. Called from
        App's validator, so problems name their key from the app ('resources.cpu_millicores')."""
        default_cpu, default_memory = DEFAULT_RESOURCES[kind]
        if self.cpu is None:
            if self.cpu_millicores is not None:
                raise problem("is given without 'cpu'; set cpu (cpu_millicores is computed from it)",
                              key="resources.cpu_millicores")
            self.cpu = default_cpu
        if self.memory is None:
            if self.memory_bytes is not None:
                raise problem("is given without 'memory'; set memory (memory_bytes is computed from it)",
                              key="resources.memory_bytes")
            self.memory = default_memory
        self._agree("cpu_millicores", quantity.cpu_millicores(self.cpu), f"cpu {self.cpu}", "resources.")
        self._agree("memory_bytes", quantity.size_bytes(self.memory), f"memory {self.memory}", "resources.")


class App(_Model):
    """One Java or Node.js service: its artifact (bare), image (docker, k8s), port and wiring."""

    name: AppName
    kind: Literal["java", "node"]
    artifact: NonEmpty
    port: Port
    image: Image | None = None
    java_version: Literal[8, 11, 17, 21] | None = None
    node_version: Annotated[int, _at_least(1)] | None = None
    replicas: Annotated[int, _at_least(0)] = 1
    resources: Resources = Field(default_factory=Resources)
    env: Annotated[dict[str, str], BeforeValidator(_env)] = Field(default_factory=dict)
    health_path: Annotated[str, _checked(re.compile(r"^/\S*$"), "a path starting with '/'")] = "/health"
    uses: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fill(self) -> App:
        if self.name in KEYWORDS:
            raise problem(f"is '{self.name}', a keyword of 'uses'; choose another app name", key="name")
        if self.kind == "java" and self.node_version is not None:
            raise problem("is set on a java app", key="node_version")
        if self.kind == "node" and self.java_version is not None:
            raise problem("is set on a node app", key="java_version")
        if self.kind == "java" and self.java_version is None:
            self.java_version = DEFAULT_JAVA_VERSION
        if self.kind == "node" and self.node_version is None:
            self.node_version = DEFAULT_NODE_VERSION
        self.resources.complete(self.kind)
        reserved = sorted(set(self.env) & RESERVED_ENV)
        if reserved:
            raise problem("is set by the toolkit from what the app uses (docs/stack.md, 'Wiring'); remove it "
                          "(secrets come from the inventory)", key=f"env.{reserved[0]}")
        seen: set[str] = set()
        for index, used in enumerate(self.uses):
            if used in seen:
                raise problem(f"names '{used}' twice", key="uses")
            if used == self.name:
                raise problem(f"names the app itself ('{used}'); an app cannot use itself", key=f"uses[{index}]")
            seen.add(used)
        return self

    @property
    def runtime_version(self) -> int:
        """java_version of a java app, node_version of a node app (always set after validation)."""
        version = self.java_version if self.kind == "java" else self.node_version
        assert version is not None  # filled by _fill
        return version


class Stack(_Model):
    """A whole stack file. `source` (not part of the document) names where it came from, for messages."""

    name: NonEmpty
    rdbms: Rdbms
    nosql: Nosql
    queue: Queue
    apps: list[App]
    _source: str = PrivateAttr(default="stack")

    @property
    def source(self) -> str:
        """Where the stack came from, as messages name it: "stack file /path/x.yml"."""
        return self._source

    def app(self, name: str) -> App:
        """The app called `name`; raises KeyError when the stack has none."""
        for app in self.apps:
            if app.name == name:
                return app
        raise KeyError(name)

    @model_validator(mode="after")
    def _wiring(self) -> Stack:
        if not self.apps:
            raise problem("is empty; list at least one app", key="apps")
        first: dict[str, int] = {}
        ports: dict[int, int] = {}
        for index, app in enumerate(self.apps):
            if app.name in first:
                raise problem(f"'apps[{index}].name': the app name '{app.name}' is used twice "
                              f"(apps[{first[app.name]}] has it too).", key=None)
            if app.port in ports:
                other = self.apps[ports[app.port]].name
                raise problem(f"'apps[{index}].port': port {app.port} of '{app.name}' is also the port of '{other}'; "
                              "every app runs on every apps host, so their ports must differ.", key=None)
            first[app.name] = index
            ports[app.port] = index
        names = [app.name for app in self.apps]
        for index, app in enumerate(self.apps):
            for position, used in enumerate(app.uses):
                if used not in first and used not in KEYWORDS:
                    raise problem(f"'apps[{index}].uses[{position}]' is '{used}', which is neither an app of this "
                                  f"stack ({', '.join(names)}) nor one of {', '.join(KEYWORDS)}.", key=None)
            urls = sorted(k for k in app.env if k in {f"{env_var_name(n)}_URLS" for n in names})
            if urls:
                raise problem(f"'apps[{index}].env.{urls[0]}' is set by the toolkit from what the app uses "
                              "(docs/stack.md, 'Wiring'); remove it.", key=None)
        cycle = self._cycle()
        if cycle:
            raise problem(f"'apps[{first[cycle[0]]}].uses' makes a cycle: {' -> '.join(cycle)}; an app cannot "
                          "depend on itself through others.", key=None)
        return self

    def _cycle(self) -> list[str]:
        """The first `uses` cycle between apps, as [a, b, ..., a]; [] when there is none."""
        uses = {app.name: [u for u in app.uses if u not in KEYWORDS] for app in self.apps}
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        path: list[str] = []

        def visit(name: str) -> list[str]:
            state[name] = 1
            path.append(name)
            for used in uses[name]:
                if state.get(used) == 1:
                    return path[path.index(used):] + [used]
                if used not in state:
                    found = visit(used)
                    if found:
                        return found
            path.pop()
            state[name] = 2
            return []

        for app in self.apps:
            if app.name not in state:
                found = visit(app.name)
                if found:
                    return found
        return []
