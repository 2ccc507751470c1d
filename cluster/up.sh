#!/usr/bin/env bash
# Creates (or updates) the local kind cluster this project's pipelines run on. Run it through `make cluster`.
set -euo pipefail

here="${BASH_SOURCE[0]}"
[[ $here == */* ]] || here="./$here"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "${here%/*}/common.sh"

# Pinned on purpose: KFP's backend follows the SDK's minor line (kfp 2.17.x); Seldon Core 1.17.1 is the last
# Apache-2.0 release; kube-prometheus-stack 67.8.0 (Prometheus Operator v0.79.2) declares kubeVersion >=1.19.
# KServe v0.20.0 is its newest release (the InferenceService CRD the deploy step's manifests are checked against) and
# documents Kubernetes 1.32+; it needs cert-manager >= 1.15.0 for its webhook certificate. Its own scripts install
# v1.17.0 (kserve-deps.env at v0.20.0), a line out of support since 2025; 1.21 is supported and tested on Kubernetes
# 1.33-1.36, the range of KFP 2.17.0's CI too.
readonly PIPELINE_VERSION=2.17.0
readonly SELDON_VERSION=1.17.1
readonly KSERVE_VERSION=v0.20.0
readonly CERT_MANAGER_VERSION=v1.21.1
readonly PROMETHEUS_CHART_VERSION=67.8.0

BUILD_IMAGES="${BUILD_IMAGES:-1}"
PROMETHEUS="${PROMETHEUS:-0}"
SERVING="${SERVING:-seldon}"

usage() {
    cat <<EOF
usage: cluster/up.sh            (normally: make cluster [SERVING=kserve] [PROMETHEUS=1] [BUILD_IMAGES=0])

Creates the kind cluster \$CLUSTER_NAME (default kfp-mlops) if it does not exist, then installs or re-applies,
waiting for each step:
  1. Kubeflow Pipelines $PIPELINE_VERSION (namespace kubeflow)
  2. the serving platform, SERVING:
     seldon (default): the Seldon Core operator $SELDON_VERSION (namespace seldon-system)
     kserve:           cert-manager $CERT_MANAGER_VERSION (namespace cert-manager), then KServe $KSERVE_VERSION
                       (namespace kserve) in Standard mode: plain Deployments and Services, no Knative, Istio
                       or Ingress
  3. the project's images: cluster/images.sh builds and loads them into kind (skipped with BUILD_IMAGES=0; then
     run \`make images\` yourself once the cluster exists, which loads them, before MLflow can start)
  4. cluster/manifests/: namespace models, its RBAC for kubeflow:pipeline-runner, the rclone Secret, MLflow; with
     SERVING=kserve also cluster/manifests/kserve/ (RBAC on InferenceServices, the S3 Secret and the ServiceAccount
     of KServe's storage initializer). Last, the platform is recorded in ConfigMap models/kfp-mlops-serving, which
     \`make run\` reads to pass serving_platform.
  5. with PROMETHEUS=1: kube-prometheus-stack $PROMETHEUS_CHART_VERSION (namespace monitoring), the PodMonitors of
     the model pods (Seldon's and KServe's), the models' alert rules and the Grafana dashboard (cluster/monitoring/)
Re-running it on an existing cluster re-applies everything and waits again.

Needs: docker (daemon running), kind v0.29.0, kubectl, helm 3 (3.8 or later for KServe's OCI charts), git, and
about 4 CPUs / 8 GiB for Docker.
Environment: CLUSTER_NAME, IMAGE_TAG (default <version>-<commit>), IMAGE_REGISTRY (default empty),
             SERVING (seldon|kserve, default seldon), BUILD_IMAGES (1|0, default 1), PROMETHEUS (0|1, default 0).
EOF
}

check_flag() {
    [[ $2 == 0 || $2 == 1 ]] || die "$1 must be 0 or 1, got '$2'"
}

check_serving() {
    [[ $SERVING == seldon || $SERVING == kserve ]] ||
        die "SERVING must be seldon or kserve, got '$SERVING'" "make cluster SERVING=kserve, or no SERVING for seldon"
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
    if [[ $SERVING == kserve && $helm_version =~ ^v3\.[0-7]\. ]]; then
        warn "KServe's charts are OCI artifacts, which Helm pulls from 3.8 on; found $helm_version"
    fi
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

install_cert_manager() {
    log "installing cert-manager $CERT_MANAGER_VERSION (KServe's webhook certificate)"
    # KServe's own install scripts install the chart this way (hack/setup/infra/manage.cert-manager-helm.sh).
    helm upgrade --install cert-manager cert-manager --repo https://charts.jetstack.io \
        --version "$CERT_MANAGER_VERSION" --kube-context "$KUBE_CONTEXT" -n cert-manager --create-namespace \
        --set crds.enabled=true ||
        die "helm could not install cert-manager $CERT_MANAGER_VERSION" \
            "helm --kube-context $KUBE_CONTEXT -n cert-manager status cert-manager" \
            "the chart comes from https://charts.jetstack.io: check network access"
    # KServe's chart creates an Issuer and a Certificate, which cert-manager's own webhook admits; the cainjector
    # then writes the CA into KServe's webhook configurations.
    kctl -n cert-manager wait --for condition=Available --timeout=5m \
        deployment/cert-manager deployment/cert-manager-cainjector deployment/cert-manager-webhook ||
        die "cert-manager is not ready after 5m; until its webhook is, KServe's Issuer and Certificate are refused" \
            "kubectl --context $KUBE_CONTEXT -n cert-manager get pods" \
            "kubectl --context $KUBE_CONTEXT -n cert-manager logs deploy/cert-manager-webhook"
}

install_kserve() {
    local charts=oci://ghcr.io/kserve/charts
    log "installing KServe $KSERVE_VERSION in Standard mode (namespace kserve)"
    # The documented Helm install (admin-guide/kubernetes-deployment, v0.20): the CRDs, then the controller.
    # deploymentMode=Standard: the chart's default is Knative, which this cluster does not have (the deploy step's
    # InferenceServices also say Standard themselves). disableIngressCreation: the model is reached through its
    # Service; without an ingress controller an Ingress would serve nothing, and IngressReady (part of Ready) is then
    # set at once. disableIstioVirtualHost: no Istio, so no warning event on every InferenceService.
    helm upgrade --install kserve-crd "$charts/kserve-crd" --version "$KSERVE_VERSION" \
        --kube-context "$KUBE_CONTEXT" -n kserve --create-namespace ||
        die "helm could not install KServe's CRDs ($charts/kserve-crd $KSERVE_VERSION)" \
            "helm --kube-context $KUBE_CONTEXT -n kserve status kserve-crd" \
            "the charts come from ghcr.io (OCI registry, Helm 3.8 or later): check network access and helm version"
    helm upgrade --install kserve "$charts/kserve-resources" --version "$KSERVE_VERSION" \
        --kube-context "$KUBE_CONTEXT" -n kserve --create-namespace \
        --set kserve.controller.deploymentMode=Standard \
        --set kserve.controller.gateway.disableIngressCreation=true \
        --set kserve.controller.gateway.disableIstioVirtualHost=true ||
        die "helm could not install KServe $KSERVE_VERSION ($charts/kserve-resources)" \
            "helm --kube-context $KUBE_CONTEXT -n kserve status kserve" \
            "'no matches for kind Certificate/Issuer' or a cert-manager webhook error: cert-manager was not ready yet; re-run make cluster SERVING=kserve"
    # InferenceServices and their pods go through KServe's webhooks (failurePolicy Fail): creating one fails with
    # "failed calling webhook" until the certificate is issued, the controller serves and its Service has an endpoint.
    log "waiting up to 2m for KServe's webhook certificate, 5m for its controller"
    kctl -n kserve wait --for condition=Ready --timeout=2m certificate/serving-cert ||
        die "KServe's webhook certificate (certificate/serving-cert) is not Ready after 2m" \
            "kubectl --context $KUBE_CONTEXT -n kserve describe certificate serving-cert" \
            "kubectl --context $KUBE_CONTEXT -n cert-manager logs deploy/cert-manager"
    kctl -n kserve rollout status deploy/kserve-controller-manager --timeout=5m ||
        die "the KServe controller is not ready after 5m; until it is, applying an InferenceService fails with 'failed calling webhook'" \
            "kubectl --context $KUBE_CONTEXT -n kserve get pods" \
            "kubectl --context $KUBE_CONTEXT -n kserve logs deploy/kserve-controller-manager"
    kctl -n kserve wait --for jsonpath='{.endpoints[0].conditions.ready}'=true --timeout=1m \
        endpointslice -l kubernetes.io/service-name=kserve-webhook-server-service ||
        die "KServe's webhook Service has no ready endpoint after 1m" \
            "kubectl --context $KUBE_CONTEXT -n kserve get endpointslices -l kubernetes.io/service-name=kserve-webhook-server-service" \
            "kubectl --context $KUBE_CONTEXT -n kserve logs deploy/kserve-controller-manager"
}

install_serving() {
    case $SERVING in
        seldon) install_seldon ;;
        kserve)
            install_cert_manager
            install_kserve
            ;;
    esac
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
    log "applying cluster/manifests (namespace models, RBAC, storage Secrets, MLflow)"
    # The namespace first: the other files put objects into it.
    kctl apply -f "$CLUSTER_DIR/manifests/models-namespace.yaml"
    local file mlflow
    local -a files=()
    for file in "$CLUSTER_DIR"/manifests/*.yaml; do
        [[ $file == */mlflow.yaml ]] || files+=(-f "$file")
    done
    kctl apply "${files[@]}"
    if [[ $SERVING == kserve ]]; then
        # What the deploy step's InferenceServices need in `models`: its RBAC, and the ServiceAccount whose Secret
        # KServe's storage initializer downloads the model with.
        kctl apply -f "$CLUSTER_DIR/manifests/kserve/"
    fi
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

# Records the platform in the cluster: `make run` reads it to pass serving_platform, so a run deploys to the control
# plane this cluster has without the user naming it again.
record_serving() {
    log "recording SERVING=$SERVING in ConfigMap models/kfp-mlops-serving (make run reads it)"
    kctl apply -f - <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: kfp-mlops-serving
  namespace: models
  labels:
    app.kubernetes.io/part-of: kfp-mlops
data:
  serving_platform: $SERVING
EOF
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
    # Both platforms' PodMonitors: the other platform's selects no pod.
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
EOF
    if [[ $SERVING == kserve ]]; then
        # Local port 8000, as for Seldon: 8080 is the KFP UI's port-forward, which make run uses.
        cat <<EOF
  Models:          KServe InferenceServices (Standard mode) go to namespace models; make run passes
                   serving_platform=kserve. Reach one (Open Inference Protocol) with
                   kubectl --context $KUBE_CONTEXT -n models port-forward svc/<model>-predictor 8000:80
                   then POST http://localhost:8000/v2/models/<model>/infer (Content-Type: application/json)
EOF
    else
        cat <<EOF
  Models:          SeldonDeployments go to namespace models; reach one (Open Inference Protocol) with
                   kubectl --context $KUBE_CONTEXT -n models port-forward svc/<model>-default 8000:8000
                   then POST http://localhost:8000/v2/models/<model>/infer (Content-Type: application/json)
EOF
    fi
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
    check_serving
    require docker kind kubectl helm git
    require_docker_daemon
    resolve_images
    show_versions
    create_cluster
    install_kfp
    install_serving
    if [[ $BUILD_IMAGES == 1 ]]; then
        "$CLUSTER_DIR/images.sh"
    else
        log "BUILD_IMAGES=0: expecting $COMPONENTS_IMAGE and $SERVING_IMAGE in the cluster already (make images)"
    fi
    apply_manifests
    record_serving
    if [[ $PROMETHEUS == 1 ]]; then
        install_prometheus
    fi
    summary
}

main "$@"
