#!/usr/bin/env bash
# Creates (or updates) the local kind cluster this project's pipelines run on. Run it through `make cluster`.
set -euo pipefail

here="${BASH_SOURCE[0]}"
[[ $here == */* ]] || here="./$here"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "${here%/*}/common.sh"

# Pinned on purpose: KFP's backend follows the SDK's minor line (kfp 2.17.x); Seldon Core 1.17.1 is the last
# Apache-2.0 release; kube-prometheus-stack 67.8.0 (Prometheus Operator v0.79.2) declares kubeVersion >=1.19.
readonly PIPELINE_VERSION=2.17.0
readonly SELDON_VERSION=1.17.1
readonly PROMETHEUS_CHART_VERSION=67.8.0

BUILD_IMAGES="${BUILD_IMAGES:-1}"
PROMETHEUS="${PROMETHEUS:-0}"

usage() {
    cat <<EOF
usage: cluster/up.sh            (normally: make cluster [PROMETHEUS=1] [BUILD_IMAGES=0])

Creates the kind cluster \$CLUSTER_NAME (default kfp-mlops) if it does not exist, then installs or re-applies,
waiting for each step:
  1. Kubeflow Pipelines $PIPELINE_VERSION (namespace kubeflow)
  2. Seldon Core operator $SELDON_VERSION (namespace seldon-system)
  3. the project's images: cluster/images.sh builds and loads them into kind (skipped with BUILD_IMAGES=0; then
     run \`make images\` yourself once the cluster exists, which loads them, before MLflow can start)
  4. cluster/manifests/: namespace models, its RBAC for kubeflow:pipeline-runner, the rclone Secret, MLflow
  5. with PROMETHEUS=1: kube-prometheus-stack $PROMETHEUS_CHART_VERSION (namespace monitoring), the Seldon PodMonitor,
     the models' alert rules and the Grafana dashboard (cluster/monitoring/)
Re-running it on an existing cluster re-applies everything and waits again.

Needs: docker (daemon running), kind v0.29.0, kubectl, helm 3, git, and about 4 CPUs / 8 GiB for Docker.
Environment: CLUSTER_NAME, IMAGE_TAG (default <version>-<commit>), IMAGE_REGISTRY (default empty),
             BUILD_IMAGES (1|0, default 1), PROMETHEUS (0|1, default 0).
EOF
}

check_flag() {
    [[ $2 == 0 || $2 == 1 ]] || die "$1 must be 0 or 1, got '$2'"
}

show_versions() {
    local kind_version kubectl_version helm_version
    log "docker $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?') (server)"
    kind_version="$(kind version)"
    log "$kind_version"
    # The node image is guaranteed for the kind release it was built with; newer kinds run it best effort.
    [[ $kind_version == *" v0.29."* ]] ||
        warn "kind v0.29.x is the release the pinned node image was built for; other versions are best effort"
    kubectl_version="$(kubectl version --client 2>/dev/null)" || kubectl_version="?"
    log "kubectl ${kubectl_version%%$'\n'*}"
    helm_version="$(helm version --short)"
    log "helm $helm_version"
    [[ $helm_version == v3.* ]] || warn "these commands were written for Helm 3, found $helm_version"
}

create_cluster() {
    if cluster_exists; then
        log "kind cluster '$CLUSTER_NAME' exists: re-applying"
    else
        log "creating kind cluster '$CLUSTER_NAME' (cluster/kind-config.yaml)"
        kind create cluster --name "$CLUSTER_NAME" --config "$CLUSTER_DIR/kind-config.yaml" --wait 5m ||
            die "kind could not create the cluster" \
                "docker ps -a; docker logs $CLUSTER_NAME-control-plane" \
                "keep the node for inspection: kind create cluster --retain ..., then kind export logs --name $CLUSTER_NAME" \
                "on Linux, 'too many open files': sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512"
    fi
    # A kubeconfig that lost the context (another tool rewrote it) gets it back.
    if ! kubectl config get-contexts "$KUBE_CONTEXT" >/dev/null 2>&1; then
        kind export kubeconfig --name "$CLUSTER_NAME"
    fi
    kctl cluster-info >/dev/null ||
        die "the API server of '$CLUSTER_NAME' does not answer" "docker ps (is $CLUSTER_NAME-control-plane running?)"
}

install_kfp() {
    local repo="github.com/kubeflow/pipelines/manifests/kustomize"
    log "installing Kubeflow Pipelines $PIPELINE_VERSION (the first run pulls about 20 images: several minutes)"
    # Not env/dev (retags every image to :master) nor env/dev-kind (ml-pipeline scaled to 0).
    kctl apply -k "$repo/cluster-scoped-resources?ref=$PIPELINE_VERSION" ||
        die "applying KFP's cluster-scoped resources failed" \
            "kubectl fetches them from GitHub with git: check network access to github.com"
    kctl wait --for condition=established --timeout=60s crd/applications.app.k8s.io ||
        die "the CRD applications.app.k8s.io was not established within 60s" "kubectl get crd applications.app.k8s.io -o yaml"
    kctl apply -k "$repo/env/platform-agnostic?ref=$PIPELINE_VERSION" ||
        die "applying KFP (env/platform-agnostic) failed" \
            "kubectl fetches it from GitHub with git: check network access to github.com" \
            "re-run make cluster (kubectl apply is idempotent)"
    # Every KFP deployment (env/platform-agnostic labels all its objects), not only the API server: the summary
    # tells users to port-forward ml-pipeline-ui, and runs need the workflow controller and the metadata service.
    # The label leaves out MLflow, which shares the namespace and is waited for once its image is loaded.
    log "waiting up to 10m for every KFP deployment (ml-pipeline, ml-pipeline-ui, workflow-controller, ...)"
    kctl -n kubeflow wait --for condition=Available --timeout=10m deployment -l application-crd-id=kubeflow-pipelines ||
        die "KFP's deployments are not all Available after 10m" \
            "kubectl --context $KUBE_CONTEXT -n kubeflow get deployments,pods (Pending: not enough CPU/memory for Docker; ImagePullBackOff: network or rate limits)" \
            "kubectl --context $KUBE_CONTEXT -n kubeflow describe pod <pod>  and  kubectl --context $KUBE_CONTEXT -n kubeflow logs deploy/ml-pipeline" \
            "ml-pipeline waits for mysql and seaweedfs: check those pods first"
}

install_seldon() {
    log "installing the Seldon Core operator $SELDON_VERSION"
    # `upgrade --install` with the documented `helm install` flags: the same on a new cluster, and re-runnable.
    helm upgrade --install seldon-core seldon-core-operator --repo https://storage.googleapis.com/seldon-charts \
        --version "$SELDON_VERSION" --kube-context "$KUBE_CONTEXT" -n seldon-system --create-namespace \
        --set usageMetrics.enabled=false --set istio.enabled=false \
        --set ambassador.enabled=false --set certManager.enabled=false ||
        die "helm could not install seldon-core-operator $SELDON_VERSION" \
            "helm --kube-context $KUBE_CONTEXT -n seldon-system status seldon-core" \
            "the chart comes from https://storage.googleapis.com/seldon-charts: check network access"
    # SeldonDeployments are refused ("failed calling webhook ... connection refused") until the controller runs.
    kctl -n seldon-system rollout status deploy/seldon-controller-manager --timeout=5m ||
        die "the Seldon controller is not ready after 5m; until it is, applying a SeldonDeployment fails with 'failed calling webhook ... connection refused'" \
            "kubectl --context $KUBE_CONTEXT -n seldon-system get pods" \
            "kubectl --context $KUBE_CONTEXT -n seldon-system logs deploy/seldon-controller-manager"
}

# render_components_image FILE: FILE with its `image: kfp-mlops-components:<tag>` line set to $COMPONENTS_IMAGE.
render_components_image() {
    local line rendered="" found=0
    while IFS= read -r line || [[ -n $line ]]; do
        if [[ $line =~ ^([[:space:]]*image:[[:space:]]*)kfp-mlops-components:[^[:space:]]+$ ]]; then
            line="${BASH_REMATCH[1]}$COMPONENTS_IMAGE"
            found=$((found + 1))
        fi
        rendered+="$line"$'\n'
    done <"$1"
    ((found == 1)) || die "expected one 'image: kfp-mlops-components:<tag>' line in $1, found $found"
    printf '%s' "$rendered"
}

apply_manifests() {
    log "applying cluster/manifests (namespace models, RBAC, rclone Secret, MLflow)"
    # The namespace first: the other files put objects into it.
    kctl apply -f "$CLUSTER_DIR/manifests/models-namespace.yaml"
    local file mlflow
    local -a files=()
    for file in "$CLUSTER_DIR"/manifests/*.yaml; do
        [[ $file == */mlflow.yaml ]] || files+=(-f "$file")
    done
    kctl apply "${files[@]}"
    # MLflow runs the tag that was built and loaded: rendered into the manifest before it is applied, so a re-run
    # with the same tag changes nothing (a separate `set image` would be undone by every apply, restarting MLflow).
    mlflow="$(render_components_image "$CLUSTER_DIR/manifests/mlflow.yaml")"
    kctl apply -f - <<<"$mlflow"
    log "waiting up to 5m for MLflow ($COMPONENTS_IMAGE)"
    kctl -n kubeflow rollout status deployment/mlflow --timeout=5m ||
        die "MLflow is not Available after 5m" \
            "kubectl --context $KUBE_CONTEXT -n kubeflow get pods -l app.kubernetes.io/name=mlflow" \
            "ImagePullBackOff / ErrImagePull: $COMPONENTS_IMAGE is not in the node; run make images (same IMAGE_TAG), never tag it latest" \
            "kubectl --context $KUBE_CONTEXT -n kubeflow describe pod -l app.kubernetes.io/name=mlflow  and  kubectl --context $KUBE_CONTEXT -n kubeflow logs deploy/mlflow"
}

install_prometheus() {
    log "installing kube-prometheus-stack $PROMETHEUS_CHART_VERSION (namespace monitoring)"
    # ...SelectorNilUsesHelmValues=false: select every PodMonitor and PrometheusRule, not only the release's.
    helm upgrade --install kube-prometheus-stack kube-prometheus-stack \
        --repo https://prometheus-community.github.io/helm-charts --version "$PROMETHEUS_CHART_VERSION" \
        --kube-context "$KUBE_CONTEXT" -n monitoring --create-namespace \
        --set prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false \
        --set prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false \
        --wait --timeout 10m ||
        die "kube-prometheus-stack is not ready after 10m" \
            "kubectl --context $KUBE_CONTEXT -n monitoring get pods" \
            "helm --kube-context $KUBE_CONTEXT -n monitoring status kube-prometheus-stack"
    kctl apply -f "$CLUSTER_DIR/monitoring/"
    # Grafana's sidecar loads every ConfigMap labelled grafana_dashboard in its namespace.
    local dashboard
    dashboard="$(kctl -n monitoring create configmap kfp-mlops-dashboard \
        --from-file="$CLUSTER_DIR/monitoring/dashboards/kfp-mlops.json" --dry-run=client -o yaml)"
    kctl apply -f - <<<"$dashboard"
    kctl -n monitoring label --overwrite configmap kfp-mlops-dashboard grafana_dashboard=1
}

summary() {
    cat <<EOF

Cluster '$CLUSTER_NAME' is ready (kubectl context $KUBE_CONTEXT).
  KFP UI and API:  kubectl --context $KUBE_CONTEXT -n kubeflow port-forward svc/ml-pipeline-ui 8080:80
                   then http://localhost:8080 (also the endpoint for kfp --endpoint / kfp.Client(host=...))
  MLflow:          kubectl --context $KUBE_CONTEXT -n kubeflow port-forward svc/mlflow 5000:5000
                   then http://localhost:5000; pipelines use tracking_uri=http://mlflow.kubeflow.svc.cluster.local:5000
  Images:          $COMPONENTS_IMAGE, $SERVING_IMAGE (compile with the same IMAGE_TAG)
  Models:          SeldonDeployments go to namespace models; reach one (Open Inference Protocol) with
                   kubectl --context $KUBE_CONTEXT -n models port-forward svc/<model>-default 8000:8000
                   then POST http://localhost:8000/v2/models/<model>/infer (Content-Type: application/json)
EOF
    if [[ $PROMETHEUS == 1 ]]; then
        cat <<EOF
  Prometheus:      kubectl --context $KUBE_CONTEXT -n monitoring port-forward svc/kube-prometheus-stack-prometheus 9090:9090
  Grafana:         kubectl --context $KUBE_CONTEXT -n monitoring port-forward svc/kube-prometheus-stack-grafana 3000:80
EOF
    fi
    echo "Delete it all: make cluster-down"
}

main() {
    if [[ ${1:-} == -h || ${1:-} == --help ]]; then
        usage
        return 0
    fi
    (($# == 0)) || die "unexpected argument(s): $*" "cluster/up.sh --help"
    check_flag BUILD_IMAGES "$BUILD_IMAGES"
    check_flag PROMETHEUS "$PROMETHEUS"
    require docker kind kubectl helm git
    require_docker_daemon
    resolve_images
    show_versions
    create_cluster
    install_kfp
    install_seldon
    if [[ $BUILD_IMAGES == 1 ]]; then
        "$CLUSTER_DIR/images.sh"
    else
        log "BUILD_IMAGES=0: expecting $COMPONENTS_IMAGE and $SERVING_IMAGE in the cluster already (make images)"
    fi
    apply_manifests
    if [[ $PROMETHEUS == 1 ]]; then
        install_prometheus
    fi
    summary
}

main "$@"
