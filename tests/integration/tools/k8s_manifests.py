#!/usr/bin/env python3
"""k8s_manifests.py: checks of deploy/kubernetes for tests/integration/k8s_manifests.sh.

    k8s_manifests.py compat KUSTOMIZATION...
        Each kustomization.yaml uses only what kustomize v2.0.3 (kubectl 1.14 to 1.20,
        Debian's kubernetes-client) reads: known top-level keys, files (not
        directories) under `resources:`, directories under `bases:`.
    k8s_manifests.py assert RENDER_DIR
        The rendered YAML in RENDER_DIR (gateway.yaml, base.yaml, dev.yaml, etcd.yaml,
        connector.yaml, as `kubectl kustomize` wrote them) has the properties the
        runbook promises. One `ok:` line per property; the first failure exits 1.
    k8s_manifests.py materialize RENDERED DEPLOYMENT ROOT CA CERT KEY
        Writes what the Deployment's first container would see under ROOT: every
        mounted ConfigMap and Secret as files (ROOT + mountPath + key), every emptyDir
        as a directory. Placeholder PEM files (REPLACE-ME) are replaced with CA, CERT
        and KEY (ca.crt, tls.crt, tls.key). The configuration file named by the
        container's `-c` is rewritten with ROOT before every mount path; prints its path.
    k8s_manifests.py for-check CONF OUT PLUGINS_DIR [--keep-store]
        OUT = CONF with plugins_dir set (the image finds its plugins without it, a
        build tree does not) and, unless --keep-store, without `store:` and
        `tunnel.advertise` (keys the binary of this branch does not read yet).

stdlib and PyYAML (Debian: python3-yaml) only.
"""
import base64
import os
import re
import sys

import yaml

# What kustomize v2.0.3 understands at the top of a kustomization.yaml. Newer keys
# (labels, patches, components, replacements, ...) are errors or ignored there.
V203_KEYS = {
    "apiVersion", "kind", "resources", "bases", "namespace", "namePrefix", "nameSuffix",
    "commonLabels", "commonAnnotations", "patchesStrategicMerge", "patchesJson6902",
    "configMapGenerator", "secretGenerator", "generatorOptions", "images", "vars",
    "crds", "configurations",
}


class Failure(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Failure(msg)


def ok(msg):
    print("ok: " + msg)


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs, kind, name=None):
    out = [d for d in docs if d.get("kind") == kind
           and (name is None or d["metadata"]["name"] == name)]
    return out


def one(docs, kind, name):
    got = find(docs, kind, name)
    need(len(got) == 1, f"want one {kind} {name}, got {len(got)}")
    return got[0]


def selects(selector, labels):
    """A matchLabels selector (or a Service's plain selector) matches labels."""
    sel = selector.get("matchLabels", selector) if selector else {}
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


def container(dep, name=None):
    cs = dep["spec"]["template"]["spec"]["containers"]
    return cs[0] if name is None else next(c for c in cs if c["name"] == name)


def port_number(c, port):
    """A probe's or Service's target port, named or numbered, as a number."""
    if isinstance(port, int):
        return port
    for p in c.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    raise Failure(f"container {c['name']}: no port named {port!r}")


def conf_path(c):
    args = list(c.get("command", [])) + list(c.get("args", []))
    need("-c" in args, f"container {c['name']}: no `-c FILE` in {args}")
    return args[args.index("-c") + 1]


def mounted_config(docs, dep, path):
    """The text of the file PATH as the Deployment's first container sees it."""
    c = container(dep)
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"].get("volumes", [])}
    for m in c.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if os.path.dirname(path) != mp:
            continue
        v = vols[m["name"]]
        if "configMap" in v:
            cm = one(docs, "ConfigMap", v["configMap"]["name"])
            key = os.path.basename(path)
            need(key in cm.get("data", {}), f"ConfigMap {cm['metadata']['name']} has no {key}")
            return cm["data"][key]
    raise Failure(f"no ConfigMap mounted for {path}")


def listen_port(addr):
    return int(addr.rsplit(":", 1)[1])


def secret_data(sec):
    out = {}
    for k, v in (sec.get("data") or {}).items():
        out[k] = base64.b64decode(v).decode("utf-8", "replace")
    for k, v in (sec.get("stringData") or {}).items():
        out[k] = v
    return out


def check_refs(docs, dep, text, what):
    """Every ${file:/abs} names a key of a mounted Secret or ConfigMap, every ${env:X}
    an env var of the container (from the downward API or a Secret)."""
    c = container(dep)
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"].get("volumes", [])}
    mounts = {m["mountPath"].rstrip("/"): vols[m["name"]] for m in c.get("volumeMounts", [])}
    env = {e["name"] for e in c.get("env", [])}
    files = re.findall(r"\$\{file:([^}]+)\}", text)
    # Plain paths of the tunnel and the connector: cert, key, ca, client_ca.
    files += re.findall(r"^\s*(?:cert|key|ca|client_ca):\s*(/\S+)\s*$", text, re.M)
    for path in files:
        need(path.startswith("/"), f"{what}: ${{file:{path}}} should be absolute (a mount)")
        v = mounts.get(os.path.dirname(path))
        need(v is not None, f"{what}: nothing is mounted at {os.path.dirname(path)} for {path}")
        key = os.path.basename(path)
        if "secret" in v:
            data = secret_data(one(docs, "Secret", v["secret"]["secretName"]))
        else:
            need("configMap" in v, f"{what}: {path} is on a volume without files")
            data = one(docs, "ConfigMap", v["configMap"]["name"]).get("data", {})
        need(key in data, f"{what}: {path}: the volume at {os.path.dirname(path)} has no {key}")
    for name in re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", text):
        need(name in env, f"{what}: ${{env:{name}}} but the container sets no {name}")
    return len(files)


def check_hardened(dep, what):
    pod = dep["spec"]["template"]["spec"]
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        non_root = sc.get("runAsNonRoot", pod.get("securityContext", {}).get("runAsNonRoot"))
        need(non_root is True, f"{what}/{c['name']}: runAsNonRoot must be true")
        need(sc.get("readOnlyRootFilesystem") is True, f"{what}/{c['name']}: readOnlyRootFilesystem")
        need(sc.get("allowPrivilegeEscalation") is False,
             f"{what}/{c['name']}: allowPrivilegeEscalation must be false")
        need("ALL" in sc.get("capabilities", {}).get("drop", []),
             f"{what}/{c['name']}: capabilities must drop ALL")
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            need("memory" in res.get(part, {}), f"{what}/{c['name']}: no {part}.memory")
        need("cpu" in res.get("requests", {}), f"{what}/{c['name']}: no requests.cpu")
    ok(f"{what}: non-root, read-only root, no privilege escalation, capabilities dropped, "
       "requests and limits")


def check_anti_affinity(dep, what):
    labels = dep["spec"]["template"]["metadata"]["labels"]
    aa = dep["spec"]["template"]["spec"].get("affinity", {}).get("podAntiAffinity", {})
    terms = [t["podAffinityTerm"] for t in aa.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
    terms += aa.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    need(any(t.get("topologyKey") == "kubernetes.io/hostname"
             and selects(t.get("labelSelector", {}), labels) for t in terms),
         f"{what}: no pod anti-affinity on kubernetes.io/hostname selecting its own pods")
    ok(f"{what}: pod anti-affinity across nodes")


def check_probes(dep, c, admin_port, what):
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet")
        need(get is not None, f"{what}: no {probe} httpGet")
        need(get["path"] == path, f"{what}: {probe} path {get['path']}, want {path}")
        got = port_number(c, get["port"])
        need(got == admin_port, f"{what}: {probe} on port {got}, the admin listener is {admin_port}")
    ok(f"{what}: readiness GET /readyz and liveness GET /healthz on the admin port {admin_port}")


def check_grace(dep, conf, what):
    drain_ms = conf.get("drain_timeout_ms", 30000)
    grace = dep["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    need(grace * 1000 > drain_ms,
         f"{what}: terminationGracePeriodSeconds {grace} s is not above drain_timeout_ms {drain_ms}")
    ok(f"{what}: terminationGracePeriodSeconds {grace} s > drain_timeout_ms {drain_ms} ms")


def assert_gateway(docs, etcd_docs):
    dep = one(docs, "Deployment", "ferry-gateway")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    need(selects(dep["spec"]["selector"], labels), "gateway: selector does not match its pods")
    need(dep["spec"]["replicas"] == 3, f"gateway: replicas {dep['spec']['replicas']}, want 3")
    ok("gateway: Deployment with 3 replicas")
    c = container(dep)
    need(c["image"].split("/")[-1].startswith("ferry:"), f"gateway: image {c['image']}")
    need(c.get("args", [])[:1] == ["gateway"], f"gateway: args {c.get('args')}, want gateway -c ...")
    path = conf_path(c)
    text = mounted_config(docs, dep, path)
    conf = yaml.safe_load(text)
    ok(f"gateway: {path} comes from a ConfigMap")

    check_anti_affinity(dep, "gateway")
    check_hardened(dep, "gateway")
    admin_port = listen_port(conf["admin"]["listen"])
    need(admin_port == 9901, f"gateway: admin listens on {admin_port}, want 9901")
    need(not conf["admin"]["listen"].startswith("127."), "gateway: admin on loopback: probes fail")
    check_probes(dep, c, admin_port, "gateway")
    check_grace(dep, conf, "gateway")

    # This replica's tunnel address, from the downward API.
    env = {e["name"]: e for e in c.get("env", [])}
    need(env.get("POD_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
         == "status.podIP", "gateway: no env POD_IP from fieldRef status.podIP")
    tport = listen_port(conf["tunnel"]["listen"])
    need(tport == 8443, f"gateway: tunnel listens on {tport}, want 8443")
    need(conf["tunnel"].get("advertise") == f"${{env:POD_IP}}:{tport}",
         f"gateway: tunnel.advertise is {conf['tunnel'].get('advertise')!r}, "
         f"want '${{env:POD_IP}}:{tport}'")
    ok("gateway: POD_IP from the downward API, tunnel.advertise ${env:POD_IP}:8443")

    # The store: the etcd StatefulSet's members, the cache on an emptyDir.
    etcd = conf.get("store", {}).get("etcd")
    need(etcd is not None, "gateway: no store.etcd")
    sts = one(etcd_docs, "StatefulSet", "etcd")
    svc = sts["spec"]["serviceName"]
    want = [f"http://{sts['metadata']['name']}-{i}.{svc}:2379" for i in range(sts["spec"]["replicas"])]
    need(sorted(etcd["endpoints"]) == sorted(want),
         f"gateway: store.etcd.endpoints {etcd['endpoints']}, want the members {want}")
    need(etcd.get("prefix") == "/ferry", "gateway: store.etcd.prefix should be /ferry")
    need(etcd.get("user") and etcd.get("password", "").startswith("${"),
         "gateway: store.etcd needs user and a password reference")
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    cache_dir = os.path.dirname(etcd["cache"])
    need(any(m["mountPath"].rstrip("/") == cache_dir and "emptyDir" in vols[m["name"]]
             for m in c["volumeMounts"]), f"gateway: store cache {etcd['cache']} is not on an emptyDir")
    ok(f"gateway: store.etcd names the {len(want)} etcd members, cache on an emptyDir")
    n = check_refs(docs, dep, text, "gateway")
    ok(f"gateway: the {n} files and every ${{env:}} ferry.yaml references are mounted or set")

    # Listeners and Services.
    ports = {}
    for lst in conf["listeners"]:
        kind = lst["plugin"] if lst["plugin"] != "http" else "http-" + lst.get("mode", "transparent")
        ports[kind] = listen_port(lst["listen"])
    want_svcs = {  # service: (port, listener kind)
        "ferry-proxy": (20003, "http-forward"),
        "ferry-socks5": (20004, "socks5"),
        "ferry-http": (80, "http-transparent"),
        "ferry-tunnel": (8443, "tunnel"),
    }
    ports["tunnel"] = tport
    for name, (port, kind) in want_svcs.items():
        s = one(docs, "Service", name)
        need(selects(s["spec"]["selector"], labels), f"Service {name} does not select the gateway pods")
        sp = [p for p in s["spec"]["ports"] if p["port"] == port]
        need(len(sp) == 1, f"Service {name}: no port {port}")
        target = port_number(c, sp[0].get("targetPort", port))
        need(kind in ports, f"ferry.yaml has no {kind} listener for Service {name}")
        need(target == ports[kind], f"Service {name}: port {port} -> {target}, "
             f"but the {kind} listener is on {ports[kind]}")
        lb = s["spec"].get("type", "ClusterIP") == "LoadBalancer"
        need(lb == (name == "ferry-tunnel"), f"Service {name}: type {s['spec'].get('type')}")
        ok(f"Service {name}: port {port} -> {kind} listener {target}"
           + (", type LoadBalancer" if lb else ""))

    # Availability: PDB and HPA.
    pdbs = [p for p in find(docs, "PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
    need(len(pdbs) == 1, "gateway: want one PodDisruptionBudget selecting its pods")
    spec = pdbs[0]["spec"]
    need(spec.get("maxUnavailable") == 1 or (spec.get("minAvailable") or 0) >= 2,
         f"gateway: PodDisruptionBudget {spec}: want maxUnavailable 1 or minAvailable >= 2")
    ok("gateway: PodDisruptionBudget")
    hpa = one(docs, "HorizontalPodAutoscaler", "ferry-gateway")
    need(hpa["apiVersion"] == "autoscaling/v2", f"HPA apiVersion {hpa['apiVersion']}")
    ref = hpa["spec"]["scaleTargetRef"]
    need(ref["kind"] == "Deployment" and ref["name"] == "ferry-gateway", f"HPA targets {ref}")
    need(any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"]),
         "HPA: no CPU metric")
    need(hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] > 3,
         f"HPA: minReplicas {hpa['spec']['minReplicas']} (want 3), maxReplicas {hpa['spec']['maxReplicas']}")
    ok("gateway: HorizontalPodAutoscaler (autoscaling/v2, CPU) from 3 replicas")

    # NetworkPolicy: tunnel from anywhere, admin only from listed peers, egress to etcd and DNS.
    nps = [p for p in find(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]
    need(len(nps) == 1, "gateway: want one NetworkPolicy selecting its pods")
    np = nps[0]["spec"]
    rules = np.get("ingress", [])

    def rule_ports(r):
        return {p["port"] for p in r.get("ports", [])}
    need(any(tport in rule_ports(r) and not r.get("from") for r in rules),
         "NetworkPolicy: the tunnel port should be open to any source")
    for port in (admin_port, ports["http-forward"], ports["socks5"], ports["http-transparent"]):
        covering = [r for r in rules if port in rule_ports(r)]
        need(covering and all(r.get("from") for r in covering),
             f"NetworkPolicy: port {port} should be admitted only from listed peers")
    egress = np.get("egress", [])
    need(any(2379 in rule_ports(r) for r in egress), "NetworkPolicy: no egress to etcd (2379)")
    need(any(53 in rule_ports(r) for r in egress), "NetworkPolicy: no egress to DNS (53)")
    need("Egress" in np.get("policyTypes", []), "NetworkPolicy: policyTypes lacks Egress")
    ok("gateway: NetworkPolicy (tunnel from anywhere, admin and proxies from listed peers, "
       "egress to etcd and DNS)")

    # Policies and placeholders.
    need(any(k.endswith(".lua") for cm in find(docs, "ConfigMap") for k in cm.get("data", {})),
         "gateway: no ConfigMap with a .lua policy")
    for s in find(docs, "Secret"):
        for k, v in secret_data(s).items():
            need("REPLACE-ME" in v, f"Secret {s['metadata']['name']}: {k} is not a REPLACE-ME placeholder")
    ok("gateway: a policies ConfigMap; every Secret value is a REPLACE-ME placeholder")


def assert_etcd(docs):
    sts = one(docs, "StatefulSet", "etcd")
    n = sts["spec"]["replicas"]
    need(n == 3, f"etcd: replicas {n}, want 3")
    svc = one(docs, "Service", sts["spec"]["serviceName"])
    need(svc["spec"].get("clusterIP") == "None", "etcd: the StatefulSet's Service must be headless")
    need(svc["spec"].get("publishNotReadyAddresses") is True,
         "etcd: the headless Service must publish members before they are ready")
    need(sts["spec"].get("podManagementPolicy") == "Parallel", "etcd: podManagementPolicy Parallel")
    labels = sts["spec"]["template"]["metadata"]["labels"]
    need(selects(svc["spec"]["selector"], labels), "etcd: the Service does not select the members")
    c = container(sts)
    args = c.get("command", []) + c.get("args", [])
    flags = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
    members = dict(m.split("=", 1) for m in flags["initial-cluster"].split(","))
    name = sts["metadata"]["name"]
    want = {f"{name}-{i}": f"http://{name}-{i}.{svc['metadata']['name']}:2380" for i in range(n)}
    need(members == want, f"etcd: --initial-cluster {flags['initial-cluster']}, want {want}")
    need(flags.get("initial-advertise-peer-urls") == f"http://$(POD_NAME).{svc['metadata']['name']}:2380"
         and flags.get("name") == "$(POD_NAME)", "etcd: --name/--initial-advertise-peer-urls per member")
    need(any(e["name"] == "POD_NAME" and e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
             for e in c.get("env", [])), "etcd: POD_NAME from the downward API")
    claims = [v["metadata"]["name"] for v in sts["spec"].get("volumeClaimTemplates", [])]
    need(claims, "etcd: no volumeClaimTemplates")
    data_dir = flags["data-dir"]
    need(any(m["name"] in claims and data_dir.startswith(m["mountPath"]) for m in c["volumeMounts"]),
         f"etcd: --data-dir {data_dir} is not on the claimed volume")
    ok(f"etcd: StatefulSet of {n} behind a headless Service, --initial-cluster names "
       + ", ".join(sorted(members)) + ", data on a PersistentVolumeClaim")
    check_anti_affinity(sts, "etcd")
    check_hardened(sts, "etcd")
    pdbs = [p for p in find(docs, "PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
    need(len(pdbs) == 1 and pdbs[0]["spec"].get("maxUnavailable") == 1,
         "etcd: want a PodDisruptionBudget with maxUnavailable 1 (quorum)")
    ok("etcd: PodDisruptionBudget keeps quorum")


def assert_connector(docs):
    dep = one(docs, "Deployment", "ferry-connector")
    c = container(dep)
    need(c.get("args", [])[:1] == ["connector"], f"connector: args {c.get('args')}")
    path = conf_path(c)
    text = mounted_config(docs, dep, path)
    conf = yaml.safe_load(text)
    need(re.search(r"^gateway:", text, re.M), "connector.yaml: `gateway:` must start a line "
         "(that is how ferry check knows a connector file)")
    ok(f"connector: Deployment of {dep['spec']['replicas']}, {path} from a ConfigMap")
    gws = conf["gateway"] if isinstance(conf["gateway"], list) else [conf["gateway"]]
    need(all(g.endswith(":8443") for g in gws), f"connector: gateway {gws} should dial the tunnel port")
    need(conf.get("systems"), "connector: no systems")
    admin_port = listen_port(conf["admin"]["listen"])
    check_probes(dep, c, admin_port, "connector")
    check_grace(dep, conf, "connector")
    check_anti_affinity(dep, "connector")
    check_hardened(dep, "connector")
    n = check_refs(docs, dep, text, "connector")
    ok(f"connector: the {n} files connector.yaml references are mounted")


def assert_dev(docs):
    dep = one(docs, "Deployment", "ferry-gateway")
    hpa = one(docs, "HorizontalPodAutoscaler", "ferry-gateway")
    need(dep["spec"]["replicas"] == 1, "dev: want 1 replica")
    need(hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 1, "dev: HPA must stay at 1")
    pdb = one(docs, "PodDisruptionBudget", "ferry-gateway")["spec"]
    need(pdb.get("maxUnavailable") == 1, "dev: one replica needs a PDB that lets it drain")
    ok("dev: 1 replica, the HPA pinned to it, the PDB lets its node drain")


def cmd_assert(d):
    gw = load(os.path.join(d, "gateway.yaml"))
    etcd = load(os.path.join(d, "etcd.yaml"))
    assert_gateway(gw, etcd)
    base = load(os.path.join(d, "base.yaml"))
    kinds = sorted((x["kind"], x["metadata"]["name"]) for x in base)
    need(kinds == sorted((x["kind"], x["metadata"]["name"]) for x in gw),
         "base/ and deploy/kubernetes should render the same objects")
    need(not find(base, "StatefulSet"), "the gateway's base must not include etcd")
    ok("base/: the same objects, without etcd")
    assert_etcd(etcd)
    assert_connector(load(os.path.join(d, "connector.yaml")))
    assert_dev(load(os.path.join(d, "dev.yaml")))


def cmd_compat(paths):
    for p in paths:
        with open(p, encoding="utf-8") as f:
            k = yaml.safe_load(f)
        bad = set(k) - V203_KEYS
        need(not bad, f"{p}: {sorted(bad)} unknown to kustomize v2.0.3")
        here = os.path.dirname(p)
        for r in k.get("resources", []):
            need(os.path.isfile(os.path.join(here, r)),
                 f"{p}: resources: {r} is not a file (kustomize v2.0.3 wants directories in bases:)")
        for b in k.get("bases", []):
            need(os.path.isdir(os.path.join(here, b)), f"{p}: bases: {b} is not a directory")
        for g in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
            for f_ in g.get("files", []):
                src = f_.split("=", 1)[-1]
                need(not src.startswith("..") and os.path.isfile(os.path.join(here, src)),
                     f"{p}: generator file {src} must exist inside the kustomization")
    ok(f"{len(paths)} kustomization.yaml files use only what kustomize v2.0.3 reads")


def cmd_materialize(rendered, dep_name, root, ca, cert, key):
    docs = load(rendered)
    dep = one(docs, "Deployment", dep_name)
    c = container(dep)
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"].get("volumes", [])}
    pems = {"ca.crt": ca, "tls.crt": cert, "tls.key": key}
    mount_paths = []
    for m in c.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        mount_paths.append(mp)
        v = vols[m["name"]]
        target = root + mp
        os.makedirs(target, exist_ok=True)
        if "configMap" in v:
            data = one(docs, "ConfigMap", v["configMap"]["name"]).get("data", {})
        elif "secret" in v:
            data = secret_data(one(docs, "Secret", v["secret"]["secretName"]))
        else:
            continue
        for k, val in data.items():
            if k in pems and "REPLACE-ME" in val:
                with open(pems[k], encoding="utf-8") as f:
                    val = f.read()
            with open(os.path.join(target, k), "w", encoding="utf-8") as f:
                f.write(val)
    path = conf_path(c)
    with open(root + path, encoding="utf-8") as f:
        text = f.read()
    # One pass (ROOT itself may contain a mount path such as /tmp/), longest first.
    alts = "|".join(re.escape(mp + "/") for mp in sorted(mount_paths, key=len, reverse=True))
    text = re.sub(r"(?<![\w/])(" + alts + ")", lambda m: root + m.group(1), text)
    with open(root + path, "w", encoding="utf-8") as f:
        f.write(text)
    print(root + path)


def cmd_for_check(src, out, plugins, *opts):
    need(set(opts) <= {"--keep-store"}, f"for-check: unknown option in {opts}")
    with open(src, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    if "--keep-store" not in opts:
        conf.pop("store", None)
        conf.get("tunnel", {}).pop("advertise", None)
    conf["plugins_dir"] = plugins
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump(conf, f, sort_keys=False)


def main(argv):
    try:
        if argv[:1] == ["assert"] and len(argv) == 2:
            cmd_assert(argv[1])
        elif argv[:1] == ["compat"] and len(argv) >= 2:
            cmd_compat(argv[1:])
        elif argv[:1] == ["materialize"] and len(argv) == 7:
            cmd_materialize(*argv[1:])
        elif argv[:1] == ["for-check"] and len(argv) in (4, 5):
            cmd_for_check(*argv[1:])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
