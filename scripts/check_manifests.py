"""Check deploy/k8s: what a cluster would accept, and what the manifests promise.

Renders the base and every overlay with `kubectl kustomize`, validates every object
strictly (no unknown field anywhere) against the oldest and newest Kubernetes API
schemas that kubernetes-validate ships from VERSIONS on, the Secret examples too, then
checks what deploy/README.md says of them: probes that restart no pod while the
database is down, migrations in every pod before it serves, resources, Secrets as
Secrets, disruption budgets, network policies that let only the gateway reach the
services, overlays with a namespace and an image of their own.

Usage: .venv/bin/python scripts/check_manifests.py [K8S_FOLDER]   (run by .ci/run;
needs kubectl and the dev dependencies; default deploy/k8s). Exits 1 naming every
problem found.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "deploy" / "k8s"
OLDEST = "1.30.0"  # the oldest Kubernetes these manifests are checked against (gRPC probes are GA since 1.27)
SERVICE_PORTS = {"gateway": 7400, "member": 7401, "wallet": 7402, "points": 7403, "campaign": 7404}
CONSOLE_PORT = 8080  # the web console (deploy/k8s/base/console.yaml): HTTP, a client of the gateway only
SECRET_ENV = ("HUIYUAN_DATABASE_URL", "HUIYUAN_QR_SECRET", "HUIYUAN_CONSOLE_SECRET")  # never a literal value

problems: list[str] = []


def problem(where: str, text: str) -> None:
    problems.append(f"{where}: {text}")


def render(folder: Path) -> list[dict]:
    done = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        problem(str(folder), f"kubectl kustomize failed: {done.stderr.strip()}")
        return []
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def validate(where: str, objects: list[dict], versions: list[str]) -> None:
    for obj in objects:
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(p) for p in error.path)
                problem(
                    where,
                    f"{obj['kind']}/{obj['metadata']['name']} is not valid Kubernetes {version}: {path}: {error.message}",
                )


def selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, f"the checks read matchLabels only: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def check_pod_basics(here: str, deployment: dict) -> None:
    """What every huiyuan Deployment keeps: replicas, no service links or token, not root."""
    pod = deployment["spec"]["template"]["spec"]
    if deployment["spec"].get("replicas", 1) < 2:
        problem(here, "fewer than 2 replicas: one pod's loss or eviction stops the service")
    if pod.get("enableServiceLinks") is not False:
        problem(
            here,
            "enableServiceLinks must be false: Kubernetes would set HUIYUAN_<NAME>_PORT=tcp://... for the huiyuan-* Services",
        )
    if pod.get("automountServiceAccountToken") is not False:
        problem(here, "mounts a service account token it never uses")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        problem(here, "may run as root")


def check_containers(here: str, containers: list[dict], secrets: dict[str, set[str]]) -> None:
    """Every container: resources, no privilege, a read-only root, secrets from Secrets."""
    for container in containers:
        at = f"{here} container {container['name']}"
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(kind, {}):
                    problem(at, f"no {resource} {kind[:-1]}")
        context = container.get("securityContext", {})
        if context.get("allowPrivilegeEscalation") is not False or not context.get("readOnlyRootFilesystem"):
            problem(at, "must not escalate privileges and must have a read-only root file system")
        env = env_of(container)
        if "HUIYUAN_ENV" in env:
            problem(at, "sets HUIYUAN_ENV: production runs without it (development only)")
        for variable in SECRET_ENV:
            if variable in env and "secretKeyRef" not in env[variable].get("valueFrom", {}):
                problem(at, f"{variable} must come from a Secret")
        for ref in (e["valueFrom"]["secretKeyRef"] for e in env.values() if "secretKeyRef" in e.get("valueFrom", {})):
            if ref["key"] not in secrets.get(ref["name"], set()):
                problem(at, f"reads Secret {ref['name']} key {ref['key']}, which secrets.example.yaml does not show")


def check_budget(here: str, labels: dict, objects: list[dict]) -> None:
    budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget" and selects(o["spec"]["selector"], labels)]
    if len(budgets) != 1 or budgets[0]["spec"].get("maxUnavailable") != 1:
        problem(here, "needs one PodDisruptionBudget with maxUnavailable 1")


def check_console(where: str, deployment: dict, secrets: dict[str, set[str]], objects: list[dict]) -> None:
    """The web console: HTTP probes on /healthz, the gateway's address, no database, its
    CSRF secret from a Secret, Secure cookies (the ingress ends TLS)."""
    here = f"{where} {deployment['metadata']['name']}"
    check_pod_basics(here, deployment)
    pod = deployment["spec"]["template"]["spec"]
    (app,) = [c for c in pod["containers"] if c["name"] == "console"] or [None]
    if app is None:
        problem(here, "no container named console")
        return
    if [p["containerPort"] for p in app.get("ports", [])] != [CONSOLE_PORT]:
        problem(here, f"its container must listen on {CONSOLE_PORT}")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        http = app.get(probe, {}).get("httpGet", {})
        if http.get("path") != "/healthz" or http.get("port") != CONSOLE_PORT:
            problem(here, f"{probe} must GET /healthz on {CONSOLE_PORT}")
    if pod.get("initContainers"):
        problem(here, "the console has no database to migrate")
    env = env_of(app)
    if "HUIYUAN_DATABASE_URL" in env:
        problem(here, "the console reads no database: it is a client of the gateway")
    if env.get("HUIYUAN_GATEWAY_ADDR", {}).get("value") != f"huiyuan-gateway:{SERVICE_PORTS['gateway']}":
        problem(here, "HUIYUAN_GATEWAY_ADDR must be the gateway's Service")
    if "HUIYUAN_CONSOLE_SECRET" not in env:
        problem(here, "HUIYUAN_CONSOLE_SECRET (the CSRF tokens' key, the same in every replica) is not set")
    if env.get("HUIYUAN_CONSOLE_SECURE_COOKIES", {}).get("value") != "true":
        problem(here, "HUIYUAN_CONSOLE_SECURE_COOKIES must be true: the ingress serves the console over TLS")
    check_containers(here, pod["containers"], secrets)
    check_budget(here, deployment["spec"]["template"]["metadata"]["labels"], objects)


def check_deployment(where: str, deployment: dict, secrets: dict[str, set[str]], objects: list[dict]) -> None:
    name = deployment["metadata"]["name"]
    service = name.removeprefix("huiyuan-")
    here = f"{where} {name}"
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    if service == "console":
        check_console(where, deployment, secrets, objects)
        return
    port = SERVICE_PORTS.get(service)
    if port is None:
        problem(here, "not one of huiyuan's processes")
        return
    check_pod_basics(here, deployment)
    (app,) = [c for c in pod["containers"] if c["name"] == service] or [None]
    if app is None:
        problem(here, f"no container named {service}")
        return
    if [p["containerPort"] for p in app.get("ports", [])] != [port]:
        problem(here, f"its container must listen on {port}")
    for probe in ("livenessProbe", "startupProbe"):
        grpc = app.get(probe, {}).get("grpc", {})
        if grpc.get("service") != "liveness" or grpc.get("port") != port:
            problem(
                here,
                f'{probe} must ask gRPC health for "liveness" on {port}: the service\'s own name goes '
                "NOT_SERVING while the database is down, and a liveness probe on it restarts every pod",
            )
    readiness = app.get("readinessProbe", {}).get("grpc", {})
    if readiness.get("service", "") != "" or readiness.get("port") != port:
        problem(here, f'readinessProbe must ask gRPC health for the whole service ("") on {port}')
    migrate = [c for c in pod.get("initContainers", []) if c.get("command") == ["huiyuan", "migrate", service]]
    if not migrate:
        problem(here, f"no init container runs `huiyuan migrate {service}` before the service starts")
    containers = [*pod.get("initContainers", []), *pod["containers"]]
    check_containers(here, containers, secrets)
    for container in containers:
        url = env_of(container).get("HUIYUAN_DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
        if url.get("key") != service:
            problem(
                f"{here} container {container['name']}",
                f"HUIYUAN_DATABASE_URL must be the Secret huiyuan-database's key {service} (its own database role)",
            )
    for volume in pod.get("volumes", []):
        if "secret" in volume and volume["secret"]["secretName"] not in secrets:
            problem(here, f"mounts Secret {volume['secret']['secretName']}, which secrets.example.yaml does not show")
    mounted = {v["name"]: v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    mounts = {m["mountPath"]: mounted.get(m["name"]) for m in app.get("volumeMounts", [])}
    env = env_of(app)
    if service == "gateway":
        key = env.get("HUIYUAN_IDENTITY_KEY_FILE", {}).get("value", "")
        if mounts.get(str(Path(key).parent)) != "huiyuan-gateway-identity" or Path(key).name not in secrets.get(
            "huiyuan-gateway-identity", ()
        ):
            problem(
                here, "HUIYUAN_IDENTITY_KEY_FILE must name gateway.key in the mounted Secret huiyuan-gateway-identity"
            )
    else:
        keys = env.get("HUIYUAN_CALLER_KEYS_DIR", {}).get("value", "")
        if mounts.get(keys) != "huiyuan-caller-keys":
            problem(here, "HUIYUAN_CALLER_KEYS_DIR must be the mounted Secret huiyuan-caller-keys")
    if ("HUIYUAN_QR_SECRET" in env) != (service in ("member", "gateway")):
        problem(here, "HUIYUAN_QR_SECRET goes to the member service and the gateway, and to no other")
    check_budget(here, labels, objects)


def allowed(objects: list[dict], source: dict | None, target: dict, port: int) -> bool:
    """May a pod with labels `source` (None: from outside the namespace) open `port` on
    a pod with labels `target`, by the NetworkPolicies among objects? Both the source's
    egress (for a pod of ours) and the target's ingress must allow it."""

    def rules(pod_labels: dict, kind: str) -> list[dict] | None:  # None: no policy isolates it
        policies = [
            p
            for p in objects
            if p["kind"] == "NetworkPolicy"
            and kind in p["spec"].get("policyTypes", [])
            and selects(p["spec"]["podSelector"], pod_labels)
        ]
        if not policies:
            return None
        return [rule for p in policies for rule in p["spec"].get(kind.lower(), [])]

    def peer_matches(peer: dict, labels: dict | None) -> bool:
        if "ipBlock" in peer or "namespaceSelector" in peer:
            return labels is None  # our pods are in our namespace: only podSelector peers name them
        return labels is not None and selects(peer["podSelector"], labels)

    def opens(rule: dict, direction: str, labels: dict | None) -> bool:
        ports = rule.get("ports")
        if ports is not None and not any(p.get("port") == port for p in ports):
            return False
        peers = rule.get(direction)
        return peers is None or any(peer_matches(peer, labels) for peer in peers)

    ingress = rules(target, "Ingress")
    if ingress is not None and not any(opens(rule, "from", source) for rule in ingress):
        return False
    if source is None:
        return True
    egress = rules(source, "Egress")
    return egress is None or any(opens(rule, "to", target) for rule in egress)


def check_network(where: str, objects: list[dict]) -> None:
    pods = {
        o["metadata"]["name"].removeprefix("huiyuan-"): o["spec"]["template"]["metadata"]["labels"]
        for o in objects
        if o["kind"] == "Deployment"
    }
    for name, labels in pods.items():
        for kind in ("Ingress", "Egress"):
            if not any(
                o["kind"] == "NetworkPolicy"
                and o["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "huiyuan"}}
                and not o["spec"].get(kind.lower())
                and kind in o["spec"].get("policyTypes", [])
                and selects(o["spec"]["podSelector"], labels)
                for o in objects
            ):
                problem(where, f"{name}: no policy denies all {kind.lower()} first")
    # the services from the gateway alone; the gateway from outside and the console; the
    # console from outside alone
    reached_from = {"gateway": {"outside", "console"}, "console": {"outside"}}
    for name, labels in pods.items():
        port = CONSOLE_PORT if name == "console" else SERVICE_PORTS[name]
        for source_name, source in [*pods.items(), ("outside", None)]:
            may = allowed(objects, source, labels, port)
            should = source_name in reached_from.get(name, {"gateway"})
            if may != should:
                problem(where, f"{source_name} {'may' if may else 'may not'} reach {name}:{port}")
    for name, labels in pods.items():  # out: PostgreSQL, DNS and the collector, from every pod
        egress = [
            rule
            for o in objects
            if o["kind"] == "NetworkPolicy"
            and "Egress" in o["spec"].get("policyTypes", [])
            and selects(o["spec"]["podSelector"], labels)
            for rule in o["spec"].get("egress", [])
        ]
        for port in (5432, 53, 4317):
            if not any(any(p.get("port") == port for p in rule.get("ports", [])) for rule in egress):
                problem(where, f"{name} may not reach port {port} outside")


def check_overlay(where: str, objects: list[dict]) -> None:
    for obj in objects:
        if not obj["metadata"].get("namespace"):
            problem(where, f"{obj['kind']}/{obj['metadata']['name']} has no namespace")
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            if ":" not in container["image"]:
                problem(
                    where,
                    f"{deployment['metadata']['name']} runs the image {container['image']!r}: an overlay names its registry and tag",
                )


def main() -> int:
    if not shutil.which("kubectl"):
        print("check_manifests: kubectl not found (Debian: apt-get install kubernetes-client)", file=sys.stderr)
        return 1
    kustomize = re.search(
        r"Kustomize Version: v(\d+)",
        subprocess.run(["kubectl", "version", "--client"], capture_output=True, text=True).stdout,
    )
    if not kustomize or int(kustomize[1]) < 4:
        print(
            "check_manifests: this kubectl's kustomize is older than v4 (kubectl before 1.24; Debian 12's "
            "kubernetes-client is 1.20, with kustomize v2): the overlays use labels, replicas and patches. "
            "Use kubectl 1.27 or newer.",
            file=sys.stderr,
        )
        return 1
    versions = sorted({OLDEST, kubernetes_validate.latest_version()})
    examples = [doc for doc in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()) if doc]
    validate("secrets.example.yaml", examples, versions)
    secrets = {s["metadata"]["name"]: set(s.get("stringData", {})) | set(s.get("data", {})) for s in examples}
    folders = [K8S / "base", *sorted(p for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())]
    count = 0
    for folder in folders:
        where = str(folder.relative_to(K8S.parent))
        objects = render(folder)
        count += len(objects)
        validate(where, objects, versions)
        for config in (o for o in objects if o["kind"] == "ConfigMap"):
            if "HUIYUAN_ENV" in config.get("data", {}):
                problem(where, "the ConfigMap sets HUIYUAN_ENV: production runs without it")
        for deployment in (o for o in objects if o["kind"] == "Deployment"):
            check_deployment(where, deployment, secrets, objects)
        if sorted(o["metadata"]["name"] for o in objects if o["kind"] == "Deployment") != sorted(
            f"huiyuan-{s}" for s in [*SERVICE_PORTS, "console"]
        ):
            problem(where, "must run each of huiyuan's five processes and the console once")
        check_network(where, objects)
        if folder.parent.name == "overlays":
            check_overlay(where, objects)
    for line in problems:
        print(f"check_manifests: {line}", file=sys.stderr)
    if problems:
        return 1
    print(
        f"check_manifests: {len(folders)} kustomizations, {count} objects and {len(examples)} example Secrets "
        f"valid (strict) for Kubernetes {' and '.join(versions)}; probes, migrations, resources, Secrets, "
        "disruption budgets, network policies and overlays as deploy/README.md says"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
