"""What the consistency tests check on the committed deployment files: each check takes the parsed files and returns
the problems it found (an empty list when consistent), so the tests can also show each check failing on a copy with a
service, a variable or a topic taken out."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from deploy import flink_jobs
from deploy.local import kafka_acls
from deploy.local.flink import JOB_CLUSTER_CONFIG
from deploy.local.kafka_acls import Grant
from deploy.local.settings import StackSettings
from deploy.manifests.kafka_users import (
    deployed_principals,
    password_variable,
    script_grants,
    strimzi_grants,
    table_grants,
    user_name,
)
from deploy.manifests.services import (
    AIRFLOW_POD_LABELS,
    HEALTH_PATH,
    IMAGE_REGISTRY,
    KAFKA_CA,
    LIBRARY_VARIABLES,
    POSTGRES_CA,
    READY_PATH,
    REGISTRY_CA,
    REGISTRY_SERVER_TLS,
    REGISTRY_USERS_SECRET,
    SERVICES,
    STATSD_PORT,
    DeployedService,
    SecretFiles,
    image,
)
from deploy.manifests.settings_env import Variable, module_variables, service_variables
from deploy.metrics_targets import STATSD
from schemas.catalogue import Catalogue
from stream_processors.window_jobs import JOBS as WINDOW_JOBS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "compose" / "compose.yaml"
IMAGES_DIR = ROOT / "deploy" / "images"
SERVICE_DOCKERFILE = IMAGES_DIR / "service.Dockerfile"
FLINK_DOCKERFILE = IMAGES_DIR / "flink.Dockerfile"
STACK_HADOOP_POM = ROOT / "deploy" / "local" / "poms" / "hadoop.xml"
HADOOP_CLIENT = ("org.apache.hadoop:hadoop-client-api", "org.apache.hadoop:hadoop-client-runtime")
"""Hadoop's shaded client: what Flink needs on its classpath to load its Hadoop file system (``hdfs://``)."""
PROFILES = ("core", "lake", "stream", "batch", "obs")
IMAGE_PREFIX = f"{IMAGE_REGISTRY}/"
LAG_READER = "keda-lag"
"""KEDA's KafkaUser (``platform.yaml``): Describe on every topic and group, to read consumer lag; no principal's."""

Doc = dict[str, Any]


def python_services(root: Path = ROOT) -> list[str]:
    """Every deployable service: a package of ``services/`` with an entrypoint."""
    return sorted(path.parent.name for path in (root / "services").glob("*/__main__.py"))


def load_compose(path: Path = COMPOSE_FILE) -> Doc:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def load_documents(text: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def compose_service_of(compose: Doc, service: str) -> tuple[str, Doc] | None:
    """The compose service built from ``service.Dockerfile`` for ``services/<service>``."""
    for name, body in compose.get("services", {}).items():
        build = body.get("build") or {}
        if isinstance(build, dict) and (build.get("args") or {}).get("SERVICE") == service:
            return name, body
    return None


def workload_of(docs: Iterable[Doc], service: DeployedService) -> Doc | None:
    for doc in docs:
        if doc.get("kind") in ("Deployment", "StatefulSet") and doc["metadata"]["name"] == service.k8s_name:
            return doc
    return None


def missing_services(names: Iterable[str], compose: Doc, docs: list[Doc]) -> list[str]:
    """Each service needs a deployment spec, an image (built by compose from the service recipe), a compose service
    and a Kubernetes workload running that image."""
    known = {s.name: s for s in SERVICES}
    problems = []
    for name in names:
        spec = known.get(name)
        if spec is None:
            problems.append(f"{name}: no entry in deploy/manifests/services.py")
            continue
        found = compose_service_of(compose, name)
        if found is None:
            problems.append(f"{name}: no compose service builds it")
        elif found[1].get("image") != image(name):
            problems.append(f"{name}: compose image {found[1].get('image')} is not {image(name)}")
        workload = workload_of(docs, spec)
        if workload is None:
            problems.append(f"{name}: no Kubernetes workload {spec.k8s_name}")
        elif [c["image"] for c in workload["spec"]["template"]["spec"]["containers"]] != [image(name)]:
            problems.append(f"{name}: the Kubernetes workload does not run {image(name)}")
    return problems


SECRET_REF = "<secret>"


def compose_environment(body: Doc) -> dict[str, str]:
    env = body.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): ("" if v is None else str(v)) for k, v in env.items()}


def k8s_environment(docs: list[Doc], workload: Doc) -> dict[str, str]:
    """A workload's first container's environment (``container_environment``)."""
    return container_environment(docs, workload["spec"]["template"]["spec"]["containers"][0])


def container_environment(docs: list[Doc], container: Doc) -> dict[str, str]:
    """A container's environment: its ConfigMaps' data, then ``env`` (``SECRET_REF`` for a value from a Secret)."""
    maps = {doc["metadata"]["name"]: doc.get("data", {}) for doc in docs if doc.get("kind") == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps.get(source.get("configMapRef", {}).get("name"), {}))
    env.update(container_env(container.get("env", [])))
    return env


def settings_env_problems(
    variables: Mapping[str, Variable], env: Mapping[str, str], where: str, *, secret_ok: Any
) -> list[str]:
    """Every variable a program must have is set, nothing set is unknown to it, and its secrets come by reference
    (``secret_ok(value)``)."""
    problems = [
        f"{where}: {name} is not set ({v.settings})" for name, v in variables.items() if v.must_set and name not in env
    ]
    problems += [
        f"{where}: {name} is set but nothing there reads such a variable"
        for name in env
        if name not in variables and name not in LIBRARY_VARIABLES
    ]
    secrets = {name for name, v in variables.items() if v.secret} | {"PGPASSWORD"}
    problems += [
        f"{where}: secret {name} has a literal value" for name in env if name in secrets and not secret_ok(env[name])
    ]
    return problems


def environment_problems(service: str, env: Mapping[str, str], where: str, *, secret_ok: Any) -> list[str]:
    """A service's variables (``settings_env_problems``), and its metrics port the one Prometheus scrapes."""
    variables = service_variables(service)
    spec = next(s for s in SERVICES if s.name == service)
    problems = settings_env_problems(variables, env, where, secret_ok=secret_ok)
    if "METRICS_PORT" in variables and env.get("METRICS_PORT") != str(spec.port):
        problems.append(f"{where}: METRICS_PORT {env.get('METRICS_PORT')} is not {spec.port}")
    if "METRICS_HOST" in variables and env.get("METRICS_HOST") != "0.0.0.0":
        problems.append(f"{where}: METRICS_HOST must be 0.0.0.0 (probes and Prometheus come from outside)")
    return problems


def container_env(items: Iterable[Doc]) -> dict[str, str]:
    """A container's ``env`` list as a mapping (``SECRET_REF`` for a value from a Secret)."""
    env: dict[str, str] = {}
    for item in items:
        source = item.get("valueFrom", {})
        env[item["name"]] = SECRET_REF if "secretKeyRef" in source else str(item.get("value", source))
    return env


def flink_job_problems(docs: list[Doc]) -> list[str]:
    """The window jobs run on Kubernetes as the product runs them (``window_job_problems``): one FlinkDeployment
    whose job is the product's entrypoint with every window job, its configuration the one those jobs set with
    the environment it gives them (checkpoint interval, parallelism), the product's cluster settings (state
    backend, restart strategy, retained checkpoints) and memory, and a KafkaUser allowing what the jobs do."""
    deployments = [doc for doc in docs if doc.get("kind") == "FlinkDeployment"]
    if len(deployments) != 1:
        names = [doc["metadata"]["name"] for doc in deployments]
        return [f"{len(deployments)} FlinkDeployments {names}: the window jobs run as one Flink job"]
    doc = deployments[0]
    spec = doc["spec"]
    where = f"FlinkDeployment {doc['metadata']['name']}"
    args = spec["job"]["args"]
    module = args[args.index("-pym") + 1] if "-pym" in args[:-1] else None
    names = args[args.index("-pym") + 2 :] if module else []
    env = container_environment(docs, spec["podTemplate"]["spec"]["containers"][0])
    jobmanager_memory, taskmanager_memory, slots = product_flink_memory()
    memory = {"jobManager": jobmanager_memory, "taskManager": taskmanager_memory}
    problems = window_job_problems(module, names, env, spec["flinkConfiguration"], where, secret_ok=k8s_secret_ok)
    problems += [
        f"{where}: {role} memory {spec[role]['resource']['memory']}, the product's is {size}"
        for role, size in memory.items()
        if spec[role]["resource"]["memory"] != size
    ]
    if spec["flinkConfiguration"].get("taskmanager.numberOfTaskSlots") != str(slots):
        problems.append(f"{where}: taskmanager.numberOfTaskSlots is not the product's {slots}")
    if not problems:
        config = flink_jobs.flink_job_config(names, env)
        if int(config["parallelism.default"]) != spec["job"]["parallelism"]:
            problems.append(
                f"{where}: job.parallelism {spec['job']['parallelism']}, "
                f"the jobs' own is {config['parallelism.default']}"
            )
        problems += flink_access_problems(docs, names, env)
    return problems


def window_job_problems(
    module: str | None,
    names: Sequence[str],
    env: Mapping[str, str],
    configuration: Mapping[str, str],
    where: str,
    *,
    secret_ok: Any,
) -> list[str]:
    """A deployment of the window jobs runs the product's entrypoint (``stream_processors.window_jobs``) with every
    job of the registry, in its order (the order names the Flink job and its operators, which a savepoint restores
    by: the stream stage submits this list), gives the jobs every variable they need, and configures the cluster as
    the product does (``JOB_CLUSTER_CONFIG``; and the jobs' own job-wide configuration where it states one)."""
    wanted = list(WINDOW_JOBS)
    problems = []
    if module != flink_jobs.TOGETHER_MODULE:
        problems.append(f"{where}: runs {module}, not {flink_jobs.TOGETHER_MODULE}")
    if list(names) != wanted:
        missing = [name for name in wanted if name not in names]
        unknown = [name for name in names if name not in wanted]
        problems.append(
            f"{where}: runs window jobs {list(names)}, the product's are {wanted} "
            f"(missing {missing}, unknown {unknown})"
        )
    problems += settings_env_problems(module_variables(flink_jobs.TOGETHER_MODULE), env, where, secret_ok=secret_ok)
    for key, value in JOB_CLUSTER_CONFIG.items():
        if str(configuration.get(key)) != str(value):
            problems.append(f"{where}: {key} is {configuration.get(key)}, the product's is {value}")
    if problems:
        return problems
    try:
        config = flink_jobs.flink_job_config(names, env)
    except ValueError as error:
        return [f"{where}: {error}"]
    return [
        f"{where}: {key} is {configuration[key]}, the jobs set {value}"
        for key, value in config.items()
        if key in configuration and str(configuration[key]) != value
    ]


def flink_access_problems(docs: list[Doc], names: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The jobs' KafkaUser (``KAFKA_SASL_USERNAME``) may read each job's source, write its aggregates and late
    events, use its consumer group and its transactional ids."""
    user = env.get("KAFKA_SASL_USERNAME", "")
    found = [d for d in docs if d.get("kind") == "KafkaUser" and d["metadata"]["name"] == user]
    if not found:
        return [f"flink jobs: no KafkaUser {user!r}"]
    allowed = strimzi_grants(found[0]["spec"]["authorization"]["acls"])
    problems = []
    for name in names:
        settings = flink_jobs.job_settings(flink_jobs.job(name), env)
        prefix = (settings.transactional_id_prefix or settings.group_id) + "-"
        needed = [("topic", settings.source_topic, "literal", "READ")]
        needed += [("topic", t, "literal", "WRITE") for t in (settings.sink_topic, settings.late_topic)]
        needed += [("group", settings.group_id, "literal", "READ"), ("transactional_id", prefix, "prefixed", "WRITE")]
        problems += [
            f"flink jobs: KafkaUser {user} may not {op} {kind} {resource} ({name})"
            for kind, resource, pattern, op in needed
            if (kind, resource, pattern, op) not in allowed
        ]
    return problems


FLINK_OPTIONS_WITH_VALUES = frozenset({"-py", "-pym", "-pyclientexec", "-pyexec", "-pyfs", "-pyreq", "-pyarch", "-s"})


def compose_flink_problems(compose: Doc) -> list[str]:
    """Compose runs the window jobs as the product does (``window_job_problems``): a service submitting
    ``stream_processors/window_jobs.py`` with every job's name (``flink run -py``), and the JobManager, the
    TaskManager and that client configured as the product's cluster, with its memory sizes."""
    services = compose.get("services", {})
    script = f"/opt/freightline/{flink_jobs.TOGETHER_SCRIPT}"
    submitters = [
        (name, body)
        for name, body in services.items()
        if "-py" in (body.get("command") or []) and "run" in body["command"]
    ]
    if len(submitters) != 1:
        return [f"compose: {len(submitters)} services submit Flink jobs ({[n for n, _ in submitters]}), wanted one"]
    name, body = submitters[0]
    command = body["command"]
    arguments = command[command.index("run") + 1 :]
    positional, index = [], 0
    while index < len(arguments):
        if arguments[index] in FLINK_OPTIONS_WITH_VALUES:
            index += 2
            continue
        if not arguments[index].startswith("-"):
            positional.append(arguments[index])
        index += 1
    found = arguments[arguments.index("-py") + 1] if "-py" in arguments[:-1] else None
    module = flink_jobs.TOGETHER_MODULE if found == script else found
    where = f"compose {name}"
    env = compose_environment(body)
    problems = window_job_problems(module, positional, env, flink_properties(env), where, secret_ok=compose_secret_ok)
    jobmanager_memory, taskmanager_memory, slots = product_flink_memory()
    sizes = {
        "jobmanager.memory.process.size": jobmanager_memory,
        "taskmanager.memory.process.size": taskmanager_memory,
        "taskmanager.numberOfTaskSlots": str(slots),
    }
    for role in ("flink-jobmanager", "flink-taskmanager"):
        properties = flink_properties(compose_environment(services.get(role, {})))
        problems += [
            f"compose {role}: {key} is {properties.get(key)}, the product's is {value}"
            for key, value in {**JOB_CLUSTER_CONFIG, **sizes}.items()
            if str(properties.get(key)) != str(value)
        ]
    return problems


def flink_properties(env: Mapping[str, str]) -> dict[str, str]:
    """The Flink configuration of an official Flink image's container (``FLINK_PROPERTIES``, ``key: value`` lines)."""
    parsed = yaml.safe_load(env.get("FLINK_PROPERTIES", "")) or {}
    return {str(key): str(value) for key, value in parsed.items()}


def product_flink_memory() -> tuple[str, str, int]:
    """(JobManager process memory, TaskManager process memory, slots per TaskManager) of the product's cluster: the
    local stack's defaults (``FREIGHTLINE_FLINK_*``), where the window jobs' tests and bench run."""
    fields = StackSettings.model_fields
    return (
        str(fields["flink_jobmanager_memory"].default),
        str(fields["flink_taskmanager_memory"].default),
        int(fields["flink_taskmanager_slots"].default),
    )


def compose_secret_ok(value: str) -> bool:
    """A compose secret comes from the uncommitted .env: a required interpolation, never a literal."""
    return re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", value) is not None


def k8s_secret_ok(value: str) -> bool:
    return value == SECRET_REF


def kafka_access_problems(service: DeployedService, docs: list[Doc], env: Mapping[str, str]) -> list[str]:
    """On Kubernetes the Topic Operator owns the topics: a service creates none (``*_CREATE_TOPICS`` false), and its
    KafkaUser may read what its settings consume by default and what it is scaled on."""
    where = f"k8s {service.k8s_name}"
    variables = service_variables(service.name)
    problems = [
        f"{where}: {name} is not false (the Topic Operator owns the topics)"
        for name in variables
        if name.endswith("_CREATE_TOPICS") and env.get(name) != "false"
    ]
    if "KAFKA_BOOTSTRAP_SERVERS" not in variables:
        return problems
    users = [d for d in docs if d.get("kind") == "KafkaUser" and d["metadata"]["name"] == service.k8s_name]
    if not users:
        return [*problems, f"{where}: no KafkaUser {service.k8s_name}"]
    readable = {
        name
        for resource, name, _, operation in strimzi_grants(users[0]["spec"]["authorization"]["acls"])
        if resource == "topic" and operation == "READ"
    }
    consumed = {service.scale_topic} if service.scale_topic else set()
    if service.groups:
        for name, variable in variables.items():
            if name.endswith("_TOPICS") and isinstance(variable.default, str):
                consumed |= {t.strip() for t in variable.default.split(",") if t.strip()}
    problems += [f"{where}: its KafkaUser may not read {topic}" for topic in sorted(consumed - readable)]
    return problems


def grant_problems(where: str, principal: str, granted: set[Grant], expected: set[Grant]) -> list[str]:
    """What a user grants beyond its principal's rows, and what of them it lacks."""
    problems = [f"{where}: grants {g} no row of {principal} does" for g in sorted(granted - expected)]
    return problems + [f"{where}: lacks {g} of its rows" for g in sorted(expected - granted)]


def kafka_user_problems(docs: list[Doc]) -> list[str]:
    """Every principal of the ACL table (``deploy/local/kafka_acls.py``, the local cluster's rows) has a KafkaUser
    granting exactly its rows' grants (but Create on the named topics, which the Topic Operator owns), and every
    KafkaUser of the platform but KEDA's lag reader is such a principal's."""
    users = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "KafkaUser"}
    problems = []
    wanted = {user_name(principal): principal for principal in deployed_principals()}
    for name, principal in sorted(wanted.items()):
        user = users.get(name)
        if user is None:
            problems.append(f"k8s: no KafkaUser {name} (principal {principal} of the ACL table)")
            continue
        granted = strimzi_grants(user["spec"]["authorization"]["acls"])
        problems += grant_problems(f"k8s KafkaUser {name}", principal, granted, table_grants(principal))
    problems += [
        f"k8s: KafkaUser {name} is no principal of the ACL table"
        for name in sorted(set(users) - set(wanted) - {LAG_READER})
    ]
    return problems


def mounted_files(pod: Doc, container: Doc) -> dict[str, tuple[str, str]]:
    """Path -> (Secret, key) of every file a container reads from a Secret volume of its pod."""
    volumes = {v["name"]: v["secret"] for v in pod.get("volumes", []) if "secret" in v}
    files: dict[str, tuple[str, str]] = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes.get(mount["name"])
        if secret is None:
            continue
        keys = [item["key"] for item in secret.get("items", [])]
        files.update({f"{mount['mountPath']}/{key}": (secret["secretName"], key) for key in keys})
    return files


def pods(docs: list[Doc]) -> list[tuple[str, Doc, Doc]]:
    """(where, pod spec, container) of every container of the platform's workloads, init containers included."""
    found = []
    for doc in docs:
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        if kind in ("Deployment", "StatefulSet", "Job"):
            pod = doc["spec"]["template"]["spec"]
        elif kind == "FlinkDeployment":
            pod = doc["spec"]["podTemplate"]["spec"]
            init = doc["spec"]["jobManager"].get("podTemplate", {}).get("spec", {}).get("initContainers", [])
            found += [(f"{kind} {name} {c['name']}", pod, c) for c in init]
        else:
            continue
        found += [(f"{kind} {name} {c['name']}", pod, c) for c in pod.get("containers", [])]
    return found


def k8s_tls_problems(docs: list[Doc]) -> list[str]:
    """Every hop on Kubernetes as on the secure local stack: the Kafka listeners TLS with SCRAM-SHA-512, each Kafka
    client on SASL_SSL checking the brokers against Strimzi's cluster CA (mounted from its Secret), each registry
    client on HTTPS checking the CA of the registry's certificate with a user from a Secret (a service: the read-only
    one, never registering), the registry serving its certificate with both roles from a Secret, each PostgreSQL DSN
    ``verify-full`` against a mounted CA."""
    problems = []
    for kafka in (d for d in docs if d.get("kind") == "Kafka"):
        for listener in kafka["spec"]["kafka"]["listeners"]:
            if not listener.get("tls") or listener.get("authentication", {}).get("type") != "scram-sha-512":
                problems.append(f"Kafka {kafka['metadata']['name']}: listener {listener['name']} is not TLS + SCRAM")
    for where, pod, container in pods(docs):
        problems += container_tls_problems(where, container_environment(docs, container), mounted_files(pod, container))
        if container.get("image", "").startswith(IMAGE_PREFIX) and not container.get("command"):  # a service
            env = container_environment(docs, container)
            if "SCHEMA_REGISTRY_URL" in env:
                if _secret_key(container, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO") != (REGISTRY_USERS_SECRET, "reader"):
                    problems.append(f"{where}: a service's registry user is not the read-only one")
                if env.get("SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS") != "false":
                    problems.append(f"{where}: a service may register schemas (SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS)")
    return problems


def container_tls_problems(where: str, env: Mapping[str, str], files: Mapping[str, tuple[str, str]]) -> list[str]:
    """``k8s_tls_problems`` of one container, given its environment and the Secret files it mounts."""

    def mounted(variable: str, secret: SecretFiles) -> list[str]:
        path = env.get(variable, "")
        if files.get(path) != (secret.secret, secret.keys[0]):
            return [f"{where}: {variable} ({path or 'unset'}) is not {secret.secret}'s {secret.keys[0]} mounted"]
        return []

    problems = []
    if "KAFKA_BOOTSTRAP_SERVERS" in env:
        if (env.get("KAFKA_SECURITY_PROTOCOL"), env.get("KAFKA_SASL_MECHANISM")) != ("SASL_SSL", "SCRAM-SHA-512"):
            problems.append(f"{where}: Kafka is not SASL_SSL with SCRAM-SHA-512")
        problems += mounted("KAFKA_SSL_CA_LOCATION", KAFKA_CA)
    if "SCHEMA_REGISTRY_URL" in env:
        if not env["SCHEMA_REGISTRY_URL"].startswith("https://"):
            problems.append(f"{where}: SCHEMA_REGISTRY_URL is not https")
        problems += mounted("SCHEMA_REGISTRY_SSL_CA_LOCATION", REGISTRY_CA)
        if env.get("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO") != SECRET_REF:
            problems.append(f"{where}: SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO is not from a Secret")
    if "SCHEMA_REGISTRY_SERVER_PORT" in env:
        problems += mounted("SCHEMA_REGISTRY_SERVER_SSL_CERTFILE", REGISTRY_SERVER_TLS)
        for users in ("SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS", "SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS"):
            if env.get(users) != SECRET_REF:
                problems.append(f"{where}: {users} is not from a Secret")
    dsn = env.get("SCHEMA_REGISTRY_SERVER_DATABASE_DSN")
    if dsn is not None:
        root = re.search(r"sslrootcert=([^&]+)", dsn)
        if "sslmode=verify-full" not in dsn:
            problems.append(f"{where}: SCHEMA_REGISTRY_SERVER_DATABASE_DSN is not sslmode=verify-full")
        if root is None or files.get(root.group(1)) != (POSTGRES_CA.secret, POSTGRES_CA.keys[0]):
            problems.append(f"{where}: the DSN's sslrootcert is not {POSTGRES_CA.secret}'s mounted")
    return problems


def _secret_key(container: Doc, variable: str) -> tuple[str, str] | None:
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if item["name"] == variable and ref:
            return ref["name"], ref["key"]
    return None


COMPOSE_KAFKA_SETUP = ROOT / "deploy" / "compose" / "kafka" / "setup.sh"
COMPOSE_CA = "/etc/freightline/tls/ca.crt"
"""Where compose's clients find the CA certificate (the volume ``tls-ca``, which holds nothing else)."""
COMPOSE_KAFKA_USERS = {"flink-jobs": kafka_acls.STREAM}
"""Compose services running as a principal other than a Python service's own (the window jobs' submitter)."""


def compose_kafka_user_problems(compose: Doc, setup: str) -> list[str]:
    """Compose's Kafka users are the ACL table's: the set-up script (``kafka/setup.sh``) makes each deployed
    principal's user with exactly its local rows' grants (Create included: the services create their topics, as on
    the secure local stack) and nothing else, its password given to ``kafka-setup`` from ``.env``; each Kafka client
    logs in as its own principal with that password."""
    granted, users = script_grants(setup)
    problems = []
    wanted = {user_name(principal): principal for principal in deployed_principals()}
    for name, principal in sorted(wanted.items()):
        if name not in granted:
            problems.append(f"compose: kafka/setup.sh grants nothing to {name} (principal {principal})")
            continue
        expected = table_grants(principal, create_topics=True)
        problems += grant_problems(f"compose user {name}", principal, granted[name], expected)
        if users.get(name) != password_variable(principal):
            problems.append(f"compose: kafka/setup.sh does not make user {name} with {password_variable(principal)}")
    problems += [
        f"compose: kafka/setup.sh grants to {n}, no principal of the ACL table"
        for n in sorted(set(granted) - set(wanted))
    ]
    services = compose.get("services", {})
    setup_env = compose_environment(services.get("kafka-setup", {}))
    problems += [
        f"compose kafka-setup: {variable} is not given from .env"
        for variable in sorted(set(users.values()))
        if not compose_secret_ok(setup_env.get(variable, "")) or variable not in setup_env.get(variable, "")
    ]
    for name, body in sorted(services.items()):
        env = compose_environment(body)
        if "KAFKA_BOOTSTRAP_SERVERS" not in env:
            continue
        found = [s.name for s in SERVICES if compose_service_of(compose, s.name) == (name, body)]
        client = found[0] if found else COMPOSE_KAFKA_USERS.get(name)
        if client is None:
            problems.append(f"compose {name}: a Kafka client of no principal")
            continue
        if env.get("KAFKA_SASL_USERNAME") != user_name(client):
            problems.append(f"compose {name}: KAFKA_SASL_USERNAME is not {user_name(client)}")
        if password_variable(client) not in env.get("KAFKA_SASL_PASSWORD", ""):
            problems.append(f"compose {name}: KAFKA_SASL_PASSWORD is not ${password_variable(client)}")
    return problems


def compose_tls_problems(compose: Doc) -> list[str]:
    """Compose's hops as on the secure local stack: the brokers take clients on SASL_SSL only (a PLAINTEXT
    listener binds the container's loopback), each Kafka client is SASL_SSL with SCRAM checking the CA, each registry
    client HTTPS with the CA and a user from ``.env`` (a service: the read-only one, never registering), the registry
    serves its certificate with both roles, PostgreSQL takes TLS only and its clients verify it (``verify-full``);
    a client mounts the CA from ``tls-ca``, never a volume holding a key."""
    services = compose.get("services", {})
    problems = []
    for name in ("kafka", "kafka-remote"):
        env = compose_environment(services.get(name, {}))
        protocols = dict(item.split(":") for item in env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "").split(","))
        for listener in env.get("KAFKA_LISTENERS", "").split(","):
            label, _, address = listener.partition("://")
            if protocols.get(label) != "SASL_SSL" and not address.startswith("127.0.0.1:"):
                problems.append(f"compose {name}: listener {listener} takes {protocols.get(label)} off the loopback")
    postgres = services.get("postgres", {})
    if "ssl=on" not in postgres.get("command", []):
        problems.append("compose postgres: ssl is not on")
    registry_service = compose_service_of(compose, "schema_registry")
    for name, body in sorted(services.items()):
        env = compose_environment(body)
        mounts = [str(v) for v in body.get("volumes", [])]
        where = f"compose {name}"
        needs_ca = False
        if "KAFKA_BOOTSTRAP_SERVERS" in env:
            needs_ca = True
            wanted = ("SASL_SSL", "SCRAM-SHA-512", COMPOSE_CA)
            found = tuple(env.get(f"KAFKA_{k}") for k in ("SECURITY_PROTOCOL", "SASL_MECHANISM", "SSL_CA_LOCATION"))
            if found != wanted:
                problems.append(f"{where}: Kafka is {found}, not {wanted}")
        if "SCHEMA_REGISTRY_URL" in env:
            needs_ca = True
            if (
                not env["SCHEMA_REGISTRY_URL"].startswith("https://")
                or env.get("SCHEMA_REGISTRY_SSL_CA_LOCATION") != COMPOSE_CA
            ):
                problems.append(f"{where}: the registry is not HTTPS checked against the CA")
            if not compose_secret_ok(env.get("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "")):
                problems.append(f"{where}: no registry user from .env")
            if (body.get("build") or {}).get("args", {}).get("SERVICE") and (
                "READER" not in env.get("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "")
                or env.get("SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS") != "false"
            ):
                problems.append(f"{where}: a service is not the registry's read-only user without auto-registration")
        for key, value in env.items():
            if value.startswith("postgresql") and "@postgres:" in value:
                needs_ca = True
                if f"sslmode=verify-full&sslrootcert={COMPOSE_CA}" not in value:
                    problems.append(f"{where}: {key} is not sslmode=verify-full against the CA")
        if needs_ca and f"tls-ca:{COMPOSE_CA.rpartition('/')[0]}:ro" not in mounts:
            problems.append(f"{where}: does not mount tls-ca read-only at {COMPOSE_CA.rpartition('/')[0]}")
        if any(m.startswith("tls-authority") for m in mounts) and name != "tls":
            problems.append(f"{where}: mounts the CA's key")
    if registry_service is not None:
        env = compose_environment(registry_service[1])
        for key in ("SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS", "SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS"):
            if not compose_secret_ok(env.get(key, "")):
                problems.append(f"compose schema-registry: {key} is not from .env")
        if not env.get("SCHEMA_REGISTRY_SERVER_SSL_CERTFILE"):
            problems.append("compose schema-registry: no certificate (plain HTTP)")
    return problems


def compose_health_problems(service: DeployedService, body: Doc) -> list[str]:
    test = " ".join(body.get("healthcheck", {}).get("test", []))
    wanted = f"127.0.0.1:{service.port}{HEALTH_PATH}"
    problems = [] if wanted in test else [f"compose {service.name}: health check does not probe {wanted}"]
    build_args = (body.get("build") or {}).get("args") or {}
    if str(build_args.get("HEALTH_PORT")) != str(service.port):
        problems.append(f"compose {service.name}: image HEALTH_PORT {build_args.get('HEALTH_PORT')} != {service.port}")
    return problems


def k8s_port_problems(service: DeployedService, docs: list[Doc], workload: Doc) -> list[str]:
    where = f"k8s {service.k8s_name}"
    container = workload["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    problems = [] if ports.get("http") == service.port else [f"{where}: container port {ports} != {service.port}"]
    for probe, path in (("livenessProbe", HEALTH_PATH), ("readinessProbe", READY_PATH), ("startupProbe", HEALTH_PATH)):
        get = container.get(probe, {}).get("httpGet", {})
        port = ports.get(get.get("port")) if isinstance(get.get("port"), str) else get.get("port")
        if get.get("path") != path or port != service.port:
            problems.append(f"{where}: {probe} is not {path} on {service.port}")
    services = [d for d in docs if d.get("kind") == "Service" and d["metadata"]["name"] == service.k8s_name]
    if not services or services[0]["spec"]["ports"][0]["port"] != service.port:
        problems.append(f"{where}: no Service on port {service.port}")
    security = container.get("securityContext", {})
    if not (
        security.get("readOnlyRootFilesystem")
        and security.get("runAsNonRoot")
        and security.get("allowPrivilegeEscalation") is False
        and security.get("capabilities", {}).get("drop") == ["ALL"]
    ):
        problems.append(f"{where}: securityContext is not non-root, read-only, without capabilities")
    resources = container.get("resources", {})
    if not resources.get("requests") or not resources.get("limits"):
        problems.append(f"{where}: no resource requests and limits")
    for kind in ("ServiceAccount", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"):
        name = f"{service.k8s_name}-config" if kind == "ConfigMap" else service.k8s_name
        if not any(d.get("kind") == kind and d["metadata"]["name"] == name for d in docs):
            problems.append(f"{where}: no {kind} {name}")
    return problems


def topic_problems(catalogue: Catalogue, docs: list[Doc]) -> list[str]:
    """Every local catalogue topic is a KafkaTopic with its partitions, cleanup policy and retention; nothing else
    is (the remote cluster's topics belong to the upstream)."""
    found = {d["spec"]["topicName"]: d["spec"] for d in docs if d.get("kind") == "KafkaTopic"}
    problems = []
    for spec in catalogue.on_cluster("local"):
        topic = found.pop(spec.name, None)
        if topic is None:
            problems.append(f"topic {spec.name}: no KafkaTopic")
            continue
        config = {k: str(v) for k, v in topic.get("config", {}).items()}
        wanted = spec.topic_config()
        if topic["partitions"] != spec.partitions:
            problems.append(
                f"topic {spec.name}: {topic['partitions']} partitions, the catalogue says {spec.partitions}"
            )
        for key, value in wanted.items():
            if config.get(key) != value:
                problems.append(f"topic {spec.name}: {key}={config.get(key)}, the catalogue says {value}")
        if "retention.ms" not in wanted and "retention.ms" in config:
            problems.append(f"topic {spec.name}: retention.ms set, the catalogue has none")
    problems += [f"topic {name}: a KafkaTopic the catalogue does not declare on the local cluster" for name in found]
    return problems


def scaling_problems(catalogue: Catalogue, docs: list[Doc]) -> list[str]:
    """replicas <= partitions: a consumer beyond the partitions of what it consumes idles."""
    problems = []
    for doc in docs:
        if doc.get("kind") == "ScaledObject":
            topic = doc["spec"]["triggers"][0]["metadata"]["topic"]
            partitions = catalogue.topic(topic).partitions
            if doc["spec"]["maxReplicaCount"] > partitions:
                problems.append(
                    f"{doc['metadata']['name']}: up to {doc['spec']['maxReplicaCount']} replicas on "
                    f"{topic}'s {partitions} partitions"
                )
    for service in SERVICES:
        workload = workload_of(docs, service)
        if (
            service.scale_topic
            and workload is not None
            and workload["spec"]["replicas"] > catalogue.topic(service.scale_topic).partitions
        ):
            problems.append(f"{service.k8s_name}: more replicas than partitions")
    return problems


EXACT_VERSION = re.compile(r"v?\d+\.\d+\.\d+")
"""A pinned operator, chart or Kubernetes version: major.minor.patch, no range."""
PINNED_TAG = re.compile(r"^[^:@\s]+(:[A-Za-z0-9_.-]*\d[A-Za-z0-9_.-]*)(@sha256:[0-9a-f]{64})?$")


def unpinned(images: Iterable[str]) -> list[str]:
    """Image references without a versioned tag (none, ``latest``, ``stable``, ...)."""
    return sorted({ref for ref in images if not PINNED_TAG.match(ref) or ref.endswith(":latest")})


def images_in(document: Any) -> list[str]:
    """Every ``image:`` value in a parsed document (containers, FlinkDeployments, compose services)."""
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "image" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(images_in(value))
    elif isinstance(document, list):
        for item in document:
            found.extend(images_in(item))
    return found


def dockerfile_images(text: str) -> list[str]:
    """The base images a Dockerfile names (``ARG *_IMAGE=`` defaults and literal ``FROM``s)."""
    found = re.findall(r"^ARG [A-Z_]*IMAGE=(\S+)", text, re.M)
    found += [ref for ref in re.findall(r"^FROM (\S+)", text, re.M) if not ref.startswith("$")]
    return found


def compose_profile_problems(compose: Doc) -> list[str]:
    """For each profile, what it starts depends only on what it starts (compose refuses otherwise)."""
    services = compose.get("services", {})
    problems = []
    for profile in PROFILES:
        active = {n for n, body in services.items() if not body.get("profiles") or profile in body["profiles"]}
        if not active:
            problems.append(f"profile {profile}: starts nothing")
        for name in sorted(active):
            for dependency, condition in (services[name].get("depends_on") or {}).items():
                if dependency not in active:
                    problems.append(f"profile {profile}: {name} depends on {dependency}, which it does not start")
                elif condition.get("condition") not in ("service_healthy", "service_completed_successfully"):
                    problems.append(f"profile {profile}: {name} waits for {dependency} without a condition")
                elif condition.get("condition") == "service_healthy" and "healthcheck" not in services[dependency]:
                    problems.append(f"profile {profile}: {dependency} has no health check for {name} to wait on")
    return problems


def statsd_problems(docs: list[Doc], compose: Doc, airflow_values: Doc, mapping: str) -> list[str]:
    """Airflow's metrics reach Prometheus on Kubernetes as in compose: a statsd_exporter (the compose image) running
    the observability mapping from a ConfigMap, a Service with its StatsD and metrics ports, a ServiceMonitor whose
    job is the metrics target's name (what the alerts see), a NetworkPolicy letting Airflow's pods send to it, and
    the Airflow chart's values sending StatsD there with compose's metrics settings."""
    target = STATSD[0]
    name = target.name
    where = f"k8s {name}"
    wanted_ports = {(STATSD_PORT, "UDP"), (target.metrics_port, "TCP")}
    problems: list[str] = []

    def one(kind: str, resource: str) -> Doc | None:
        found = [d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == resource]
        if not found:
            problems.append(f"{where}: no {kind} {resource}")
        return found[0] if found else None

    workload, service, monitor = one("Deployment", name), one("Service", name), one("ServiceMonitor", name)
    if workload is not None:
        pod = workload["spec"]["template"]["spec"]
        container = pod["containers"][0]
        compose_image = (compose.get("services", {}).get(name) or {}).get("image")
        if container["image"] != compose_image:
            problems.append(f"{where}: image {container['image']} is not compose's {compose_image}")
        config = next((a.split("=", 1)[1] for a in container.get("args", []) if a.startswith("--statsd.mapping-")), "")
        folder, _, file = config.rpartition("/")
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        volumes = {v["name"]: v.get("configMap", {}).get("name", "") for v in pod.get("volumes", [])}
        config_map = one("ConfigMap", volumes.get(mounts.get(folder, ""), f"{name}-mapping"))
        if config_map is not None and config_map.get("data", {}).get(file) != mapping:
            problems.append(f"{where}: its mapping ({config!r}) is not observability/statsd/mapping.yml")
        if not wanted_ports <= {(p["containerPort"], p.get("protocol", "TCP")) for p in container.get("ports", [])}:
            problems.append(f"{where}: the container does not listen on {STATSD_PORT}/UDP and {target.metrics_port}")
    if service is not None:
        ports = {(p["port"], p.get("protocol", "TCP")): p.get("name") for p in service["spec"]["ports"]}
        if not wanted_ports <= set(ports):
            problems.append(f"{where}: the Service does not serve {STATSD_PORT}/UDP and {target.metrics_port}/TCP")
        if monitor is not None:
            labels = service["metadata"].get("labels", {})
            scraped = [e.get("port") for e in monitor["spec"]["endpoints"]]
            if not monitor["spec"]["selector"].get("matchLabels", {}).items() <= labels.items() or (
                ports.get((target.metrics_port, "TCP")) not in scraped
            ):
                problems.append(f"{where}: the ServiceMonitor does not scrape the Service's metrics port")
            if labels.get(monitor["spec"].get("jobLabel", ""), service["metadata"]["name"]) != name:
                problems.append(f"{where}: the ServiceMonitor's job is not {name!r} (the alerts' job)")
    if not any(
        d.get("kind") == "NetworkPolicy"
        and d["spec"]["podSelector"].get("matchLabels", {}).items() >= AIRFLOW_POD_LABELS.items()
        and any(STATSD_PORT in [p["port"] for p in rule.get("ports", [])] for rule in d["spec"].get("egress", []))
        for d in docs
    ):
        problems.append(f"{where}: no NetworkPolicy lets Airflow's pods send to it")
    if (airflow_values.get("statsd") or {}).get("enabled", True):
        problems.append("Airflow chart: its own statsd exporter is enabled (it does not use our mapping)")
    airflow_env = container_env(airflow_values.get("env", []))
    compose_airflow = compose_environment(compose.get("services", {}).get("airflow", {}))
    wanted = {k: v for k, v in compose_airflow.items() if k.startswith("AIRFLOW__METRICS__")}
    wanted.update({"AIRFLOW__METRICS__STATSD_HOST": name, "AIRFLOW__METRICS__STATSD_PORT": str(STATSD_PORT)})
    problems += [
        f"Airflow chart: {key}={airflow_env.get(key)}, wanted {value}"
        for key, value in sorted(wanted.items())
        if airflow_env.get(key) != value
    ]
    return problems


# ---------------------------------------------------------------- the Flink image's file systems

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def pom_dependencies(path: Path) -> dict[str, str]:
    """A pom's declared dependencies, ``group:artifact`` -> version."""
    root = ET.parse(path).getroot()
    return {
        f"{dep.findtext('m:groupId', '', POM_NS)}:{dep.findtext('m:artifactId', '', POM_NS)}": dep.findtext(
            "m:version", "", POM_NS
        )
        for dep in root.findall("m:dependencies/m:dependency", POM_NS)
    }


def dockerfile_poms(text: str, root: Path = ROOT) -> list[Path]:
    """The poms a Dockerfile copies in to resolve its jars (``COPY <path>.xml ...``), as paths of this repository."""
    return [root / source for source in re.findall(r"^COPY (?!--from)(\S+\.xml)\s", text, re.M)]


def stack_hadoop_version(pom: Path = STACK_HADOOP_POM) -> str:
    """The Hadoop release the stack's HDFS runs: the one version of its pom's ``org.apache.hadoop`` artifacts."""
    versions = {v for name, v in pom_dependencies(pom).items() if name.startswith("org.apache.hadoop:")}
    if len(versions) != 1:
        raise ValueError(f"{pom}: Hadoop artifacts of versions {sorted(versions)}, wanted one")
    return versions.pop()


def flink_configurations(compose: Doc, docs: list[Doc]) -> dict[str, dict[str, str]]:
    """Each Flink manifest's configuration by where it is: the FlinkDeployments' ``flinkConfiguration`` and the
    ``FLINK_PROPERTIES`` of the compose services on the Flink image."""
    found = {
        f"FlinkDeployment {doc['metadata']['name']}": {k: str(v) for k, v in doc["spec"]["flinkConfiguration"].items()}
        for doc in docs
        if doc.get("kind") == "FlinkDeployment"
    }
    for name, body in compose.get("services", {}).items():
        env = compose_environment(body)
        if "FLINK_PROPERTIES" in env:
            found[f"compose {name}"] = flink_properties(env)
    return found


def hadoop_images(compose: Doc, docs: list[Doc]) -> list[str]:
    """The HDFS images (``apache/hadoop``) compose and the Kubernetes manifests run."""
    return sorted({ref for ref in images_in(compose) + images_in(docs) if ref.startswith("apache/hadoop:")})


def flink_hdfs_problems(
    configurations: Mapping[str, Mapping[str, str]],
    dockerfile: str,
    hadoop_version: str,
    hdfs_images: Iterable[str] = (),
    root: Path = ROOT,
) -> list[str]:
    """A Flink manifest may keep its checkpoints, savepoints or HA data on ``hdfs://`` only when the Flink image
    carries Hadoop's client (``HADOOP_CLIENT``, in a pom its Dockerfile copies) of the stack's HDFS release, and the
    HDFS images run that release's line (the client speaks to any server of it)."""
    users = {
        where: [key for key, value in configuration.items() if value.strip().startswith("hdfs://")]
        for where, configuration in configurations.items()
    }
    on_hdfs = "; ".join(f"{where} ({', '.join(keys)})" for where, keys in users.items() if keys)
    if not on_hdfs:
        return []
    poms = dockerfile_poms(dockerfile, root)
    jars: dict[str, str] = {}
    for pom in poms:
        jars.update(pom_dependencies(pom))
    problems = []
    missing = [artifact for artifact in HADOOP_CLIENT if artifact not in jars]
    if missing:
        names = [str(pom.relative_to(root)) for pom in poms]
        problems.append(f"flink image: {on_hdfs} on hdfs://, but the image's jars {names} lack {missing}")
    problems += [
        f"flink image: {artifact} {jars[artifact]}, the stack's HDFS runs Hadoop {hadoop_version}"
        for artifact in HADOOP_CLIENT
        if artifact in jars and jars[artifact] != hadoop_version
    ]
    line = hadoop_version.split(".")[:2]
    problems += [
        f"HDFS image {ref}: not Hadoop {'.'.join(line)}.x, the Flink image's client is {hadoop_version}"
        for ref in hdfs_images
        if ref.rpartition(":")[2].split(".")[:2] != line
    ]
    return problems
