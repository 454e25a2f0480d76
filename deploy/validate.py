#!/usr/bin/env python3
"""Validates the deploy manifests: deploy/compose.yaml against the Compose specification's JSON
schema (vendored: deploy/schema/compose-spec.json, from github.com/compose-spec/compose-spec,
Apache-2.0) plus the ordering the replicas rely on; deploy/kubernetes/*.yaml with
kubernetes-validate (schemas bundled in the PyPI package, no cluster or network needed).

    python3 deploy/validate.py                 # the manifests in deploy/
    python3 deploy/validate.py --self-test     # and proves a broken manifest fails

Needs PyPI `jsonschema`, `PyYAML` and `kubernetes-validate` (.ci/run installs them).
"""

import copy
import json
import pathlib
import subprocess
import sys
import tempfile

import jsonschema
import yaml

DEPLOY = pathlib.Path(__file__).resolve().parent
K8S_VERSION = "1.30.0"
K8S_FILES = [
    "secret.yaml",
    "configmap.yaml",
    "deployment.yaml",
    "service.yaml",
    "pdb.yaml",
    "hpa.yaml",
    "pgbouncer.yaml",
]


def compose_problems(doc):
    """Schema errors and broken ordering of a parsed compose file."""
    schema = json.loads((DEPLOY / "schema" / "compose-spec.json").read_text())
    problems = [
        f"compose: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(doc)
    ]
    services = doc.get("services") or {}
    migrate = services.get("migrate") or {}
    if "--migrate-only" not in (migrate.get("command") or []):
        problems.append("compose: service migrate must run --migrate-only")
    app = services.get("apexkit") or {}
    cond = ((app.get("depends_on") or {}).get("migrate") or {}).get("condition")
    if cond != "service_completed_successfully":
        problems.append(
            "compose: apexkit must depend on migrate with service_completed_successfully"
        )
    if ((app.get("deploy") or {}).get("replicas") or 1) < 2:
        problems.append("compose: apexkit must run several replicas")
    env = app.get("environment") or {}
    for key, want in [
        ("APEXKIT_DB_PREPARED_STATEMENTS", "false"),
        ("APEXKIT_RATE_LIMIT_STORAGE", "redis"),
    ]:
        if str(env.get(key)) != want:
            problems.append(f"compose: apexkit needs {key}={want}")
    for key in ["APEXKIT_MIGRATION_DATABASE_URL", "APEXKIT_REDIS_URL", "APEXKIT_SECRET"]:
        if key not in env:
            problems.append(f"compose: apexkit needs {key}")
    return problems


def kubernetes_problems(paths):
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", K8S_VERSION, *map(str, paths)],
        capture_output=True,
        text=True,
    )
    out = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        return [f"kubernetes: {out}"]
    docs = [d for p in paths for d in yaml.safe_load_all(pathlib.Path(p).read_text()) if d]
    problems = []
    kinds = {d["kind"] for d in docs}
    for kind in ["Deployment", "Service", "Secret", "PodDisruptionBudget", "HorizontalPodAutoscaler"]:
        if kind not in kinds:
            problems.append(f"kubernetes: no {kind}")
    for d in docs:
        if d["kind"] != "Deployment" or d["metadata"]["name"] != "apexkit":
            continue
        spec = d["spec"]["template"]["spec"]
        init = spec.get("initContainers") or []
        if not any("--migrate-only" in (c.get("args") or []) for c in init):
            problems.append("kubernetes: the apexkit Deployment needs an init container running --migrate-only")
        app = spec["containers"][0]
        if (app.get("readinessProbe") or {}).get("httpGet", {}).get("path") != "/readyz":
            problems.append("kubernetes: readiness probe must be GET /readyz")
        if (app.get("livenessProbe") or {}).get("httpGet", {}).get("path") != "/healthz":
            problems.append("kubernetes: liveness probe must be GET /healthz")
        if "requests" not in (app.get("resources") or {}):
            problems.append("kubernetes: the apexkit container needs resource requests")
    return problems


def validate(compose_doc, k8s_paths):
    return compose_problems(compose_doc) + kubernetes_problems(k8s_paths)


def main():
    compose_doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    k8s_paths = [DEPLOY / "kubernetes" / f for f in K8S_FILES]
    problems = validate(compose_doc, k8s_paths)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"deploy manifests valid: compose.yaml, {len(k8s_paths)} Kubernetes files")

    if "--self-test" in sys.argv:
        # Each broken copy must be refused, or the validation proves nothing.
        broken = copy.deepcopy(compose_doc)
        broken["services"]["apexkit"]["depends_on"]["migrate"]["condition"] = "service_started"
        assert compose_problems(broken), "compose: a replica not waiting for migrate passed"
        broken = copy.deepcopy(compose_doc)
        broken["services"]["apexkit"]["dependson"] = ["migrate"]
        assert compose_problems(broken), "compose: an unknown service key passed"
        broken = copy.deepcopy(compose_doc)
        broken["services"]["redis"]["image"] = ["redis", 7]
        assert compose_problems(broken), "compose: an image that is not a string passed"
        with tempfile.TemporaryDirectory() as tmp:
            text = (DEPLOY / "kubernetes" / "deployment.yaml").read_text()
            cases = {
                "typo": text.replace("containerPort: 4000", "containerPrt: 4000"),
                "type": text.replace("replicas: 3", "replicas: three"),
                "probe": text.replace("path: /readyz", "path: /healthz"),
            }
            for name, bad in cases.items():
                assert bad != text, name
                path = pathlib.Path(tmp) / f"{name}.yaml"
                path.write_text(bad)
                assert kubernetes_problems([path] + k8s_paths[:1] + k8s_paths[3:]), (
                    f"kubernetes: a broken Deployment ({name}) passed"
                )
        print("self-test: every broken manifest was refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
