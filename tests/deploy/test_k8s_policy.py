"""Our own policy for the rendered overlays: security, probes, resources, and that the
Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget and NetworkPolicy agree."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .manifests import K8S, Manifest, find, pod_template, server_container

MODEL_URI = re.compile(r"^models:/credit-risk-scoring/(?P<version>[1-9][0-9]*)$")
IMAGE_TAG = re.compile(r":[0-9a-z]+-model-(?P<version>[1-9][0-9]*)$")
SECRET_WORDS = ("PASSWORD", "TOKEN", "SECRET", "KEY")


def env_of(container: Manifest) -> dict[str, Any]:
    return {item["name"]: item for item in container["env"]}


def literal_env(container: Manifest) -> dict[str, str]:
    return {name: item["value"] for name, item in env_of(container).items() if "value" in item}


def config_data(docs: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = find(docs, "ConfigMap")["data"]
    return data


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_rolling_update_never_lowers_capacity(rendered: list[Manifest]) -> None:
    spec = find(rendered, "Deployment")["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert spec["revisionHistoryLimit"] >= 3, "rollout undo needs old ReplicaSets"
    assert spec["minReadySeconds"] > 0
    assert "replicas" not in spec, "the HorizontalPodAutoscaler owns the replica count"


def test_probes_use_the_right_endpoints_on_the_ops_port(rendered: list[Manifest]) -> None:
    """The ops listener answers probes apart from the scoring workers, whatever the load."""
    container = server_container(rendered)
    for probe, path in (
        ("startupProbe", "/readyz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/livez"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "ops"}, probe
        assert container[probe]["timeoutSeconds"] >= 1


def test_startup_budget_fits_large_models_and_the_rollout_deadline(
    rendered: list[Manifest],
) -> None:
    startup = server_container(rendered)["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget >= 120, "a large model takes minutes to download and load"
    assert find(rendered, "Deployment")["spec"]["progressDeadlineSeconds"] > budget


def test_grace_period_outlasts_pre_stop_pause_and_drain(rendered: list[Manifest]) -> None:
    pod = pod_template(rendered)["spec"]
    pause = server_container(rendered)["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = int(config_data(rendered)["GRACEFUL_TIMEOUT_SECONDS"])
    assert pause >= 5
    assert pod["terminationGracePeriodSeconds"] > pause + drain


def test_requests_and_limits_are_set(rendered: list[Manifest]) -> None:
    resources = server_container(rendered)["resources"]
    for name in ("cpu", "memory", "ephemeral-storage"):
        assert name in resources["requests"], name
        assert name in resources["limits"], name
    # Memory is not compressible: a pod that may grow past its request gets OOM-killed
    # under node pressure, so it asks for what it is allowed.
    assert resources["requests"]["memory"] == resources["limits"]["memory"]


def test_pod_meets_the_restricted_pod_security_standard(rendered: list[Manifest]) -> None:
    pod = pod_template(rendered)["spec"]
    container = server_container(rendered)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["readOnlyRootFilesystem"] is True
    assert not any(key in pod for key in ("hostNetwork", "hostPID", "hostIPC"))


def test_writable_paths_are_empty_dirs(rendered: list[Manifest]) -> None:
    pod = pod_template(rendered)["spec"]
    container = server_container(rendered)
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    metrics_dir = literal_env(container)["PROMETHEUS_MULTIPROC_DIR"]
    for path in ("/tmp", metrics_dir):
        assert path in mounts, path
        assert "emptyDir" in volumes[mounts[path]], path
        assert volumes[mounts[path]]["emptyDir"]["sizeLimit"]


def test_no_service_account_token(rendered: list[Manifest]) -> None:
    pod = pod_template(rendered)["spec"]
    account = find(rendered, "ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is False
    assert account["automountServiceAccountToken"] is False


def test_server_settings(rendered: list[Manifest]) -> None:
    container = server_container(rendered)
    env = literal_env(container)
    http, ops = container["ports"]
    assert http == {"name": "http", "containerPort": 8000, "protocol": "TCP"}
    assert ops == {"name": "ops", "containerPort": 8001, "protocol": "TCP"}
    assert env["HOST"] == "0.0.0.0"
    assert env["PORT"] == str(http["containerPort"])
    assert env["OPS_PORT"] == str(ops["containerPort"])
    assert env["METRICS_ON_MAIN_PORT"] == "false", "/metrics stays off the public port"
    assert env["OMP_NUM_THREADS"] == "1", "native thread pools are not fork-safe"
    (source,) = container["envFrom"]
    assert source["configMapRef"]["name"] == find(rendered, "ConfigMap")["metadata"]["name"]


def test_model_version_is_pinned_in_the_pod_template(rendered: list[Manifest]) -> None:
    """MODEL_URI is a literal version (never a stage or alias) that agrees with the pod's
    model-version label and the image tag, so each version is its own revision."""
    template = pod_template(rendered)
    container = server_container(rendered)
    uri = MODEL_URI.match(literal_env(container)["MODEL_URI"])
    assert uri, "MODEL_URI must be models:/credit-risk-scoring/<version>"
    version = uri["version"]
    assert template["metadata"]["labels"]["model-version"] == version
    assert template["metadata"]["annotations"]["model-uri"] == uri.string
    tag = IMAGE_TAG.search(container["image"])
    assert tag, "the image tag carries <git sha>-model-<version>"
    assert tag["version"] == version
    cause = find(rendered, "Deployment")["metadata"]["annotations"]["kubernetes.io/change-cause"]
    assert f"version {version}," in cause


def test_config_map_holds_no_model_version_and_no_secret(rendered: list[Manifest]) -> None:
    """A ConfigMap change neither shows in the ReplicaSet history nor comes back with undo."""
    data = config_data(rendered)
    assert "MODEL_URI" not in data
    assert not [key for key in data if any(word in key for word in SECRET_WORDS)]


def test_credentials_come_from_a_secret_reference(rendered: list[Manifest]) -> None:
    env = env_of(server_container(rendered))
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-credentials"
    literal = [name for name in literal_env(server_container(rendered)) if "PASSWORD" in name]
    assert literal == []
    assert "Secret" not in {doc["kind"] for doc in rendered}


def test_no_secret_is_committed() -> None:
    for path in K8S.rglob("*.yaml"):
        assert not re.search(r"^kind:\s*Secret\s*$", path.read_text(), re.MULTILINE), path


def test_prometheus_scrapes_the_metrics_endpoint_on_the_ops_port(rendered: list[Manifest]) -> None:
    annotations = pod_template(rendered)["metadata"]["annotations"]
    ports = {port["name"]: port["containerPort"] for port in server_container(rendered)["ports"]}
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(ports["ops"])
    assert annotations["prometheus.io/path"] == "/metrics"


def test_selectors_agree(rendered: list[Manifest]) -> None:
    deployment = find(rendered, "Deployment")
    labels = pod_template(rendered)["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert matches(selector, labels)
    assert "model-version" not in selector, "a selector cannot change between revisions"
    assert matches(find(rendered, "Service")["spec"]["selector"], labels)
    assert find(rendered, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    assert matches(find(rendered, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"], labels)
    spread = pod_template(rendered)["spec"]["topologySpreadConstraints"]
    assert all(matches(item["labelSelector"]["matchLabels"], labels) for item in spread)


def test_service_and_network_policy_use_the_container_ports(rendered: list[Manifest]) -> None:
    """The Service exposes only scoring; only the monitoring namespace reaches the ops port."""
    (port,) = find(rendered, "Service")["spec"]["ports"]
    assert port["targetPort"] == "http"
    public, ops = find(rendered, "NetworkPolicy")["spec"]["ingress"]
    assert public["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert ops["ports"] == [{"port": "ops", "protocol": "TCP"}]
    (source,) = ops["from"]
    assert source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }


def test_autoscaler_and_disruption_budget_fit_the_deployment(rendered: list[Manifest]) -> None:
    deployment = find(rendered, "Deployment")
    hpa = find(rendered, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "cpu" in server_container(rendered)["resources"]["requests"], "utilisation needs it"
    pdb = find(rendered, "PodDisruptionBudget")["spec"]
    # A budget that allows no eviction at the minimum size would block every node drain.
    assert pdb.get("maxUnavailable", 0) >= 1 or pdb["minAvailable"] < hpa["minReplicas"]


@pytest.mark.parametrize(
    "kind",
    [
        "ServiceAccount",
        "ConfigMap",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ],
)
def test_every_resource_is_namespaced_and_labelled(rendered: list[Manifest], kind: str) -> None:
    metadata = find(rendered, kind)["metadata"]
    assert metadata["namespace"].startswith("credit-risk")
    assert metadata["labels"]["app.kubernetes.io/name"] == "credit-risk-serving"
