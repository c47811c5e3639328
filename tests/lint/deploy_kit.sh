#!/usr/bin/env bash
# Checks the deploy kit (deploy/Dockerfile, deploy/docker-compose.yml,
# deploy/nginx.conf, deploy/k8s/) as far as a machine without a container
# engine can: `docker-compose config`, the manifests' YAML and shape, every
# setting they name against README's settings table, the probe paths against
# postd's route table, `nginx -t`, the Dockerfile's build steps against
# deploy/lib/common.sh and deploy/run.sh (and a configure of exactly what it
# copies), its packages against POSTD_PACKAGES, and its runtime packages
# against `ldd` of a built postd (POSTD_BINARY, default build/release/postd;
# skipped when there is none). Every check runs; exits 1 if any failed.
#
#   tests/lint/deploy_kit.sh [POSTD_BINARY]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
binary=${1:-build/release/postd}
for tool in docker-compose nginx python3 cmake dpkg-query; do
  command -v "$tool" >/dev/null || command -v "/usr/sbin/$tool" >/dev/null || {
    echo "deploy_kit.sh: $tool not found (apt-get install docker-compose nginx-light python3-yaml cmake)" >&2
    exit 2
  }
done
python3 -c 'import yaml' 2>/dev/null || {
  echo "deploy_kit.sh: python3 yaml not found (apt-get install python3-yaml)" >&2
  exit 2
}
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The checks written in Python; `kit NAME` runs one (the Python dispatcher is
# at the end). Inputs come as files and environment variables.
kit_py=$(
  cat <<'PY'
import json, os, re, shlex, subprocess, sys
import yaml

def fail(msg):
    print(msg)
    sys.exit(1)

def readme_settings():
    """The variable names in README's settings table ("## Configuration")."""
    text = open("README.md").read()
    m = re.search(r"^## Configuration\n(.*?)(?=^## )", text, re.S | re.M)
    if not m:
        fail("README.md: no '## Configuration' section")
    names = set()
    for line in m.group(1).splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    if len(names) < 20:
        fail(f"README.md: only {len(names)} settings found in the table")
    return names

def get_routes():
    """Paths postd serves to GET (no parameters), from http/routes.hpp."""
    text = open("http/routes.hpp").read()
    routes = re.findall(r'\{route_id::\w+,\s*"([^"]+)",\s*"([^"]+)"\}', text)
    paths = {p for p, allow in routes if "GET" in allow and ":" not in p}
    if not paths:
        fail("http/routes.hpp: no routes found")
    return paths

def k8s_docs():
    docs = []
    kdir = "deploy/k8s"
    files = sorted(f for f in os.listdir(kdir) if f.endswith((".yaml", ".yml")))
    if not files:
        fail("deploy/k8s: no YAML files")
    for f in files:
        path = os.path.join(kdir, f)
        try:
            loaded = [d for d in yaml.safe_load_all(open(path)) if d is not None]
        except yaml.YAMLError as e:
            fail(f"{path}: does not parse: {e}")
        for d in loaded:
            docs.append((path, d))
    return docs

def by_kind(docs, kind):
    found = [d for _, d in docs if isinstance(d, dict) and d.get("kind") == kind]
    if len(found) != 1:
        fail(f"deploy/k8s: expected one {kind}, found {len(found)}")
    return found[0]

def compose():
    return yaml.safe_load(open(os.environ["KIT_COMPOSE_CONFIG"]))

def postd_services(c):
    return sorted(n for n in c["services"] if re.fullmatch(r"postd\d+", n))

def env_dict(env):
    if isinstance(env, list):
        return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return env or {}

def pod_containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]

def shutdown_ms(docs, name, default):
    cm = by_kind(docs, "ConfigMap")
    return int(cm.get("data", {}).get(name, default))

# ------------------------------------------------------------------ checks

def check_k8s_yaml():
    docs = k8s_docs()
    for path, d in docs:
        if not isinstance(d, dict):
            fail(f"{path}: a document is not a mapping")
        for key in ("apiVersion", "kind"):
            if not d.get(key):
                fail(f"{path}: a document has no {key}")
        if not (d.get("metadata") or {}).get("name"):
            fail(f"{path}: {d['kind']} has no metadata.name")
    want = {"Deployment": "apps/v1", "Service": "v1", "PodDisruptionBudget": "policy/v1",
            "HorizontalPodAutoscaler": "autoscaling/v2", "ConfigMap": "v1", "Secret": "v1",
            "Job": "batch/v1"}
    for kind, api in want.items():
        d = by_kind(docs, kind)
        if d["apiVersion"] != api:
            fail(f"{kind}: apiVersion {d['apiVersion']}, expected {api}")
    dep = by_kind(docs, "Deployment")
    if dep["spec"].get("replicas") != 3:
        fail("Deployment: replicas is not 3")
    hpa = by_kind(docs, "HorizontalPodAutoscaler")
    if hpa["spec"]["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
        fail("HorizontalPodAutoscaler: scaleTargetRef does not name the Deployment")
    if not any(m.get("resource", {}).get("name") == "cpu" for m in hpa["spec"].get("metrics", [])):
        fail("HorizontalPodAutoscaler: no CPU metric")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        d = by_kind(docs, kind)
        sel = d["spec"]["selector"]
        sel = sel.get("matchLabels", sel) if kind == "PodDisruptionBudget" else sel
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            fail(f"{kind}: its selector {sel} does not select the Deployment's pods {labels}")
    for kind in ("Deployment", "Job"):
        d = by_kind(docs, kind)
        pod = d["spec"]["template"]["spec"]
        for c in pod["containers"]:
            r = c.get("resources", {})
            if not r.get("requests") or not r.get("limits"):
                fail(f"{kind} container {c['name']}: resources need requests and limits")
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True or sc.get("allowPrivilegeEscalation") is not False:
                fail(f"{kind} container {c['name']}: needs readOnlyRootFilesystem and no privilege escalation")
        if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
            fail(f"{kind}: pod securityContext.runAsNonRoot is not true")
    for name, value in (by_kind(docs, "ConfigMap").get("data") or {}).items():
        if not isinstance(value, str):
            fail(f"ConfigMap: {name} is {value!r}, not a string (kubectl refuses it)")
    secret = by_kind(docs, "Secret")
    for name, value in {**(secret.get("stringData") or {}), **(secret.get("data") or {})}.items():
        if "REPLACE_ME" not in str(value):
            fail(f"Secret: {name} is not a REPLACE_ME placeholder: never commit a real secret")
    print(f"{len(docs)} documents")

def check_settings():
    settings = readme_settings()
    docs = k8s_docs()
    named = {}  # setting -> where
    cms = {d["metadata"]["name"]: d for _, d in docs if d.get("kind") in ("ConfigMap", "Secret")}
    for kind in ("Deployment", "Job"):
        for c in pod_containers(by_kind(docs, kind)):
            for e in c.get("env", []):
                named.setdefault(e["name"], f"{kind} {c['name']} env")
            for ef in c.get("envFrom", []):
                ref = (ef.get("configMapRef") or ef.get("secretRef") or {}).get("name")
                if ref not in cms:
                    fail(f"{kind} {c['name']}: envFrom names {ref}, not in deploy/k8s")
                src = cms[ref]
                for key in list((src.get("data") or {})) + list((src.get("stringData") or {})):
                    named.setdefault(key, f"{src['kind']} {ref} (envFrom of {kind})")
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {})
                ref = ref.get("configMapKeyRef") or ref.get("secretKeyRef")
                if ref:
                    src = cms.get(ref["name"])
                    if not src or ref["key"] not in {**(src.get("data") or {}), **(src.get("stringData") or {})}:
                        fail(f"{kind} {c['name']}: {e['name']} refers to {ref['name']}/{ref['key']}, which does not exist")
    c = compose()
    for svc in postd_services(c) + ["migrate"]:
        for key in env_dict(c["services"][svc].get("environment")):
            named.setdefault(key, f"docker-compose {svc}")
    unknown = sorted(f"{k} ({w})" for k, w in named.items() if k not in settings)
    if unknown:
        fail("not settings of postd (README's table): " + ", ".join(unknown))
    print(f"{len(named)} names, all in README's table")

def check_probes():
    routes = get_routes()
    docs = k8s_docs()
    cm = by_kind(docs, "ConfigMap").get("data") or {}
    port = int(cm.get("PORT", "3000"))
    dep = by_kind(docs, "Deployment")
    seen = {}
    for c in pod_containers(dep):
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            p = c.get(probe)
            if not p or "httpGet" not in p:
                fail(f"Deployment {c['name']}: no HTTP {probe}")
            path, pport = p["httpGet"]["path"], p["httpGet"]["port"]
            if path not in routes:
                fail(f"Deployment {c['name']}: {probe} path {path} is not a GET route of postd ({sorted(routes)})")
            if ports.get(pport, pport) != port:
                fail(f"Deployment {c['name']}: {probe} port {pport} is not PORT {port}")
            seen[probe] = path
    if seen.get("livenessProbe") != "/health/live" or seen.get("readinessProbe") != "/health/ready":
        fail(f"Deployment: liveness must be /health/live and readiness /health/ready, got {seen}")
    c = compose()
    for svc in postd_services(c):
        test = " ".join(c["services"][svc].get("healthcheck", {}).get("test", []))
        paths = re.findall(r"GET (\S+) HTTP", test)
        if not paths or any(p not in routes for p in paths):
            fail(f"docker-compose {svc}: healthcheck path {paths} is not a GET route of postd")
        if "/health/ready" not in paths:
            fail(f"docker-compose {svc}: healthcheck does not ask /health/ready")
        cport = int(env_dict(c["services"][svc].get("environment")).get("PORT", "3000"))
        if f"/dev/tcp/127.0.0.1/{cport} " not in test + " ":
            fail(f"docker-compose {svc}: healthcheck does not connect to PORT {cport}")
    print(f"probes {seen}")

def check_grace():
    docs = k8s_docs()
    grace_ms = shutdown_ms(docs, "SHUTDOWN_GRACE_MS", "10000")
    delay_ms = shutdown_ms(docs, "SHUTDOWN_DELAY_MS", "0")
    dep = by_kind(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    pre = 0
    for c in pod["containers"]:
        cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        if cmd[:1] == ["sleep"]:
            pre = max(pre, int(cmd[1]))
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    need = pre + (delay_ms + grace_ms) / 1000 + 5
    if tgps < need:
        fail(f"Deployment: terminationGracePeriodSeconds {tgps} < preStop {pre} s + SHUTDOWN_DELAY_MS "
             f"{delay_ms} ms + SHUTDOWN_GRACE_MS {grace_ms} ms + 5 s for the actors to stop")
    if pre + delay_ms / 1000 < 5:
        fail(f"Deployment: SIGTERM ends accepting after {pre + delay_ms / 1000:g} s: give the endpoint "
             "removal 5 s (SHUTDOWN_DELAY_MS)")
    c = compose()
    for svc in postd_services(c):
        env = env_dict(c["services"][svc].get("environment"))
        g = int(env.get("SHUTDOWN_GRACE_MS", "10000")) + int(env.get("SHUTDOWN_DELAY_MS", "0"))
        sgp = c["services"][svc].get("stop_grace_period", "10s")
        m = re.fullmatch(r"(\d+)(ms|s|m)", str(sgp))
        secs = int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)] if m else 0
        if secs < g / 1000 + 5:
            fail(f"docker-compose {svc}: stop_grace_period {sgp} < SHUTDOWN_DELAY_MS + SHUTDOWN_GRACE_MS {g} ms + 5 s")
    print(f"terminationGracePeriodSeconds {tgps} >= {need:g}")

def check_compose():
    c = compose()
    s = c["services"]
    want = {"postgres", "pgbouncer", "redis", "migrate", "postd1", "postd2", "postd3", "nginx"}
    if not want <= set(s):
        fail(f"docker-compose: missing services {sorted(want - set(s))}")
    if s["migrate"].get("command") != ["migrate"]:
        fail("docker-compose migrate: command is not [migrate]")
    for svc in postd_services(c):
        d = s[svc]
        if d.get("build", {}).get("dockerfile") != "deploy/Dockerfile":
            fail(f"docker-compose {svc}: not built from deploy/Dockerfile")
        cond = d.get("depends_on", {}).get("migrate", {}).get("condition")
        if cond != "service_completed_successfully":
            fail(f"docker-compose {svc}: does not wait for migrate to complete (condition {cond})")
        env = env_dict(d.get("environment"))
        for k, v in {"THROTTLE_STORE": "redis", "TRUST_PROXY": "true"}.items():
            if env.get(k) != v:
                fail(f"docker-compose {svc}: {k} is {env.get(k)!r}, expected {v!r}")
        for k in ("JWT_SECRET", "DATABASE_URL", "REDIS_PASSWORD"):
            if not env.get(k):
                fail(f"docker-compose {svc}: {k} is empty")
        if "@pgbouncer:6432/" not in env["DATABASE_URL"]:
            fail(f"docker-compose {svc}: DATABASE_URL does not go through pgbouncer:6432")
    if "@pgbouncer:6432/" not in env_dict(s["migrate"].get("environment")).get("DATABASE_URL", ""):
        fail("docker-compose migrate: DATABASE_URL does not go through pgbouncer:6432")
    pg = " ".join(s["postgres"].get("command", []))
    if not s["postgres"].get("image", "").startswith("postgres:15"):
        fail("docker-compose postgres: not PostgreSQL 15")
    for setting in ("max_connections=200", "shared_buffers=", "effective_cache_size=", "work_mem=", "maintenance_work_mem="):
        if setting not in pg:
            fail(f"docker-compose postgres: command lacks -c {setting}")
    ini = open("deploy/compose/pgbouncer/pgbouncer.ini").read()
    for k, v in {"pool_mode": "transaction", "max_client_conn": "1000", "default_pool_size": "50", "listen_port": "6432"}.items():
        if not re.search(rf"^{k}\s*=\s*{v}\s*$", ini, re.M):
            fail(f"deploy/compose/pgbouncer/pgbouncer.ini: {k} is not {v}")
    mounts = [v if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}" for v in s["redis"].get("volumes", [])]
    conf = [m.split(":")[0] for m in mounts if m.split(":")[1:2] == ["/usr/local/etc/redis/redis.conf"]]
    if not conf or "/usr/local/etc/redis/redis.conf" not in " ".join(map(str, s["redis"].get("command", []))):
        fail("docker-compose redis: does not run with the mounted redis.conf")
    rconf = open(conf[0]).read()
    for line in ("appendonly yes", "maxmemory-policy noeviction"):
        if not re.search(rf"^{line}\s*$", rconf, re.M):
            fail(f"{conf[0]}: lacks '{line}'")
    nmounts = [v if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}" for v in s["nginx"].get("volumes", [])]
    if not any(m.startswith(os.path.abspath("deploy/nginx.conf") + ":/etc/nginx/nginx.conf") for m in nmounts):
        fail("docker-compose nginx: does not mount deploy/nginx.conf as /etc/nginx/nginx.conf")
    if not any(str(p.get("target") if isinstance(p, dict) else p).split(":")[-1] == "80" for p in s["nginx"].get("ports", [])):
        fail("docker-compose nginx: port 80 is not published")
    print(f"{len(s)} services")

def check_nginx_topology():
    """nginx.conf's upstreams name the compose postd services on their port,
    and the settings postd relies on are there."""
    conf = open("deploy/nginx.conf").read()
    body = re.sub(r"#.*", "", conf)
    c = compose()
    svcs = postd_services(c)
    ports = {int(env_dict(c["services"][s].get("environment")).get("PORT", "3000")) for s in svcs}
    for name, block in re.findall(r"upstream\s+(\S+)\s*\{(.*?)\}", body, re.S):
        servers = re.findall(r"^\s*server\s+(\S+?):(\d+)", block, re.M)
        if sorted(h for h, _ in servers) != svcs or {int(p) for _, p in servers} != ports:
            fail(f"deploy/nginx.conf: upstream {name} has {servers}, the compose file runs {svcs} on {ports}")
        if not re.search(r"^\s*keepalive\s+\d+;", block, re.M):
            fail(f"deploy/nginx.conf: upstream {name} keeps no connections (keepalive)")
    if not re.findall(r"upstream\s+\S+\s*\{", body):
        fail("deploy/nginx.conf: no upstream")
    required = [
        (r"proxy_http_version\s+1\.1;", "proxy_http_version 1.1"),
        (r'proxy_set_header\s+Connection\s+"";', 'proxy_set_header Connection ""'),
        (r"proxy_set_header\s+X-Forwarded-For\s+\$remote_addr;", "X-Forwarded-For set to $remote_addr"),
        (r"proxy_set_header\s+X-Real-IP\s+\$remote_addr;", "X-Real-IP"),
        (r"proxy_set_header\s+X-Request-Id\s+", "X-Request-Id"),
        (r"proxy_next_upstream\s+error\s+timeout\s+http_503\b", "proxy_next_upstream error timeout http_503"),
        (r"access_log\s+\S+", "an access log"),
    ]
    for rx, what in required:
        if not re.search(rx, body):
            fail(f"deploy/nginx.conf: lacks {what}")
    for rx, why in [(r"\$proxy_add_x_forwarded_for", "appends to the client's X-Forwarded-For (spoofable throttle key)"),
                    (r"non_idempotent", "would resend POSTs postd may have queued"),
                    (r"proxy_request_buffering\s+off", "a body must be buffered to be resent")]:
        if re.search(rx, body):
            fail(f"deploy/nginx.conf: {why}")
    m = re.search(r"client_max_body_size\s+(\d+)([kKmM]?);", body)
    size = int(m.group(1)) * {"": 1, "k": 1024, "m": 1 << 20}[m.group(2).lower()] if m else None
    readme = open("README.md").read()
    d = re.search(r"^\| `MAX_BODY_BYTES`, `MAX_CONTENT_CHARS` \| (\d+),", readme, re.M)
    if not d or size != int(d.group(1)):
        fail(f"deploy/nginx.conf: client_max_body_size is {size}, MAX_BODY_BYTES' default is {d and d.group(1)}")
    print(f"upstreams {svcs} on {sorted(ports)}, body limit {size}")

def dockerfile():
    """The Dockerfile's stages: [(from_line, [(INSTR, args)])], continuation
    lines joined, comments dropped."""
    lines, cur = [], ""
    for raw in open("deploy/Dockerfile").read().splitlines():
        if not cur and raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            cur += raw.rstrip()[:-1] + " "
            continue
        cur += raw
        if cur.strip():
            lines.append(cur.strip())
        cur = ""
    stages = []
    for line in lines:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stages.append((args.strip(), []))
        elif stages:
            stages[-1][1].append((instr, args.strip()))
    if len(stages) < 2:
        fail("deploy/Dockerfile: not multi-stage")
    return stages

def apt_packages(instrs):
    pkgs = []
    for instr, args in instrs:
        if instr != "RUN" or "apt-get install" not in args:
            continue
        for cmd in re.split(r"&&|;", args):
            toks = shlex.split(cmd)
            if "apt-get" in toks and "install" in toks:
                pkgs += [t for t in toks[toks.index("install") + 1:] if not t.startswith("-")]
    return pkgs

def check_dockerfile_build():
    stages = dockerfile()
    first, instrs = stages[0]
    if not re.match(r"debian:bookworm(\s|$)", first) or " as " not in first.lower():
        fail(f"deploy/Dockerfile: the build stage is FROM {first!r}, expected debian:bookworm AS <name>")
    build_name = first.split()[-1]
    # What deploy/run.sh does: postd_build DIR Release -> postd_configure
    # (cmake -S -B -G <gen> -DCMAKE_BUILD_TYPE=<type>) + cmake --build DIR.
    run = open("deploy/run.sh").read()
    m = re.search(r"postd_build\s+\"\$build_dir\"\s+(\w+)", run)
    if not m:
        fail("deploy/run.sh: no `postd_build \"$build_dir\" TYPE` line")
    build_type = m.group(1)
    common = open("deploy/lib/common.sh").read()
    conf = re.search(r"^postd_configure\(\) \{\n(.*?)^\}", common, re.S | re.M)
    bld = re.search(r"^postd_build\(\) \{\n(.*?)^\}", common, re.S | re.M)
    if not conf or not bld:
        fail("deploy/lib/common.sh: postd_configure / postd_build not found")
    g = re.search(r"gen=\(-G\s+(\S+?)\)", conf.group(1))
    if not g or '-DCMAKE_BUILD_TYPE="$type"' not in conf.group(1) or "cmake --build" not in bld.group(1):
        fail("deploy/lib/common.sh: postd_configure/postd_build changed; update this check and deploy/Dockerfile")
    generator = g.group(1)
    runs = " && ".join(a for i, a in instrs if i == "RUN")
    cmds = [shlex.split(c) for c in re.split(r"&&|;", runs) if c.strip()]
    cfg = [t for t in cmds if t[:1] == ["cmake"] and "-S" in t and "-B" in t]
    bl = [t for t in cmds if t[:2] == ["cmake", "--build"]]
    if not cfg:
        fail("deploy/Dockerfile: the build stage does not configure (cmake -S ... -B ...)")
    cfg = cfg[0]
    bdir = cfg[cfg.index("-B") + 1]
    gen = cfg[cfg.index("-G") + 1] if "-G" in cfg else None
    if gen != generator:
        fail(f"deploy/Dockerfile: generator {gen}, postd_configure uses {generator}")
    if f"-DCMAKE_BUILD_TYPE={build_type}" not in cfg:
        fail(f"deploy/Dockerfile: configure lacks -DCMAKE_BUILD_TYPE={build_type} (deploy/run.sh's)")
    if not bl or bl[0][2] != bdir:
        fail(f"deploy/Dockerfile: no `cmake --build {bdir}`")
    t = bl[0]
    if "--target" not in t or t[t.index("--target") + 1] != "postd":
        fail("deploy/Dockerfile: the build does not name --target postd")
    # app/CMakeLists.txt puts the binary at the top of the build tree.
    final = stages[-1][1]
    copies = [a for i, a in final if i == "COPY"]
    if not any(a.split()[0] == f"--from={build_name}" and a.split()[1] == f"{bdir}/postd" for a in copies):
        fail(f"deploy/Dockerfile: the final stage does not copy {bdir}/postd from {build_name}")
    # Configure exactly what the build stage copies (COPY's rules: a
    # directory's contents go into dest), with its own configure command.
    ctx = os.environ["KIT_TMP"] + "/context"
    workdir = "/"
    for i, a in instrs:
        if i == "WORKDIR":
            workdir = os.path.join(workdir, a)
        if i in ("COPY", "ADD") and not a.startswith("--"):
            *srcs, dest = shlex.split(a)
            dest = os.path.join(workdir, dest)
            target = ctx + dest
            for s in srcs:
                if os.path.isdir(s):
                    os.makedirs(target, exist_ok=True)
                    subprocess.run(["cp", "-a", s.rstrip("/") + "/.", target], check=True)
                else:
                    os.makedirs(target if dest.endswith("/") else os.path.dirname(target), exist_ok=True)
                    subprocess.run(["cp", "-a", s, target], check=True)
    args = [ctx + a if a.startswith("/") and a in (cfg[cfg.index("-S") + 1], bdir) else a for a in cfg]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        fail("deploy/Dockerfile: its configure fails on the files it copies:\n" + (r.stdout + r.stderr)[-2000:])
    print(f"configure {' '.join(cfg[1:])}; build --target postd; the copied sources configure")

def check_dockerfile_packages():
    stages = dockerfile()
    allowed = set(os.environ["KIT_POSTD_PACKAGES"].split())
    build = apt_packages(stages[0][1])
    if not build:
        fail("deploy/Dockerfile: the build stage installs nothing")
    extra = [p for p in build if p not in allowed]
    if extra:
        fail(f"deploy/Dockerfile: build packages not in POSTD_PACKAGES: {extra}")
    tools = [p for p in build if re.search(r"gtest|gmock|googletest|benchmark|^(redis|postgresql|pgbouncer|wrk$|"
                                           r"nodejs|npm|lua|clang|llvm|nginx|docker|python|curl|procps|iproute)", p)]
    if tools:
        fail(f"deploy/Dockerfile: the build stage installs test/service tools: {tools}")
    final = apt_packages(stages[-1][1])
    bad = [p for p in final if p.endswith("-dev") or p in {"build-essential", "g++", "gcc", "cmake", "ninja-build", "make"}]
    if bad:
        fail(f"deploy/Dockerfile: the final stage installs build packages: {bad}")
    print(f"build: {len(build)} packages of POSTD_PACKAGES; final: {' '.join(final)}")

def check_dockerfile_runtime():
    stages = dockerfile()
    base, final = stages[-1]
    if base.split()[0] != "debian:bookworm-slim":
        fail(f"deploy/Dockerfile: the final stage is FROM {base}, expected debian:bookworm-slim")
    users = [a for i, a in final if i == "USER"]
    if not users:
        fail("deploy/Dockerfile: the final stage has no USER (it would run as root)")
    uid = users[-1].split(":")[0]
    if not uid.isdigit() or int(uid) == 0:
        fail(f"deploy/Dockerfile: USER {users[-1]}: needs a numeric non-zero uid (runAsNonRoot verifies it)")
    for i, a in final:
        if i in ("COPY", "ADD") and not a.startswith("--from="):
            fail(f"deploy/Dockerfile: the final stage copies from the context ({i} {a}): binary only")
        if i == "COPY" and len(shlex.split(a)) != 3:
            fail(f"deploy/Dockerfile: the final stage copies more than the binary ({a})")
    ep = [a for i, a in final if i == "ENTRYPOINT"]
    cmd = [a for i, a in final if i == "CMD"]
    if not ep or os.path.basename(json.loads(ep[-1])[0]) != "postd" or not cmd or json.loads(cmd[-1]) != ["serve"]:
        fail("deploy/Dockerfile: expected ENTRYPOINT [\".../postd\"] and CMD [\"serve\"]")
    expose = [a for i, a in final if i == "EXPOSE"]
    docs = k8s_docs()
    port = int((by_kind(docs, "ConfigMap").get("data") or {}).get("PORT", "3000"))
    if not expose or int(expose[-1].split("/")[0]) != port:
        fail(f"deploy/Dockerfile: EXPOSE {expose} is not PORT {port}")
    for kind in ("Deployment", "Job"):
        sc = by_kind(docs, kind)["spec"]["template"]["spec"].get("securityContext", {})
        if str(sc.get("runAsUser")) != uid:
            fail(f"{kind}: runAsUser {sc.get('runAsUser')} is not the image's uid {uid}")
    print(f"final stage {base}, USER {users[-1]}, ENTRYPOINT {ep[-1]} CMD {cmd[-1]}")

def installed_deps():
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Essential}\t${Depends}, ${Pre-Depends}\n"],
                         capture_output=True, text=True, check=True).stdout
    deps, essential = {}, set()
    for line in out.splitlines():
        pkg, ess, dep = line.split("\t")
        deps[pkg] = {re.split(r"[\s:(]", alt.strip())[0] for d in dep.split(",") for alt in d.split("|") if alt.strip()}
        if ess == "yes":
            essential.add(pkg)
    return deps, essential

def closure(roots, deps):
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen or p not in deps:
            seen.add(p)
            continue
        seen.add(p)
        todo.extend(deps[p] - seen)
    return seen

def check_runtime_libs():
    final = apt_packages(dockerfile()[-1][1])
    # The package of each library (one dpkg -S for all; dpkg knows a file by
    # the path its package ships, /lib or /usr/lib, so ask for each form).
    paths = os.environ["KIT_LIBS"].split()
    forms = {p: [p, "/usr" + p, os.path.realpath(p)] for p in paths}
    out = subprocess.run(["dpkg", "-S"] + sorted({f for fs in forms.values() for f in fs}),
                         capture_output=True, text=True).stdout
    owner = {}
    for line in out.splitlines():
        pkgs, _, path = line.partition(": ")
        owner[path] = pkgs.split(",")[0].split(":")[0].strip()
    libs = {}
    for p, fs in forms.items():
        pkg = next((owner[f] for f in fs if f in owner), None)
        if not pkg:
            fail(f"{p}: no Debian package owns it")
        libs[p] = pkg
    deps, essential = installed_deps()
    missing_here = [p for p in final if p not in deps]
    if missing_here:
        fail(f"deploy/Dockerfile: final packages not known to dpkg here: {missing_here}")
    # What debian:bookworm-slim has at least: the essential packages and apt,
    # with their dependencies.
    base = closure(essential | {"apt"}, deps)
    covered = closure(set(final), deps) | base
    uncovered = sorted(f"{lib} ({pkg})" for lib, pkg in libs.items() if pkg not in covered)
    if uncovered:
        fail("deploy/Dockerfile: the final stage lacks the packages of: " + ", ".join(uncovered))
    owners = set(libs.values())
    idle = [p for p in final if p not in owners]
    if idle:
        fail(f"deploy/Dockerfile: final packages that provide no library postd loads: {idle}")
    print(f"{len(libs)} libraries, from {len(owners)} packages: covered by {' '.join(final)} and the base image")

if __name__ == "__main__":
    globals()["check_" + sys.argv[1]]()
PY
)

kit() { python3 -c "$kit_py" "$@"; }

failed=()
# check NAME COMMAND...: runs it, prints ok / FAIL with its output.
check() {
  local name=$1 out rc=0
  shift
  out=$("$@" 2>&1) || rc=$?
  if ((rc == 0)); then
    printf 'ok    %-22s %s\n' "$name" "$(tail -n 1 <<<"$out")"
  elif ((rc == 77)); then
    printf 'skip  %-22s %s\n' "$name" "$(tail -n 1 <<<"$out")"
  else
    printf 'FAIL  %-22s\n' "$name"
    sed 's/^/      /' <<<"$out"
    failed+=("$name")
  fi
}

# Placeholders for the variables the compose file requires.
compose_config() {
  JWT_SECRET=check POSTGRES_PASSWORD=check REDIS_PASSWORD=check \
    docker-compose -f deploy/docker-compose.yml "$@"
}
compose_valid() {
  compose_config config -q && compose_config config >"$tmp/compose.yml" && echo "docker-compose config: valid"
}
export KIT_COMPOSE_CONFIG=$tmp/compose.yml KIT_TMP=$tmp
KIT_POSTD_PACKAGES=$(bash -c 'source deploy/lib/common.sh && printf "%s\n" "${POSTD_PACKAGES[@]}"')
export KIT_POSTD_PACKAGES

# nginx -t resolves the upstream names (postd1..3 exist only in the compose
# network): check a copy with each `server NAME:PORT` on 127.0.0.1 instead.
# Nothing is started; -p/-e keep every path nginx opens in $tmp.
nginx_test() {
  mkdir -p "$tmp/nginx"
  sed -E 's/^([[:space:]]*server[[:space:]]+)[A-Za-z][A-Za-z0-9.-]*:/\1127.0.0.1:/' \
    deploy/nginx.conf >"$tmp/nginx/nginx.conf"
  "$nginx_bin" -t -q -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" &&
    echo "nginx -t: ok"
}

# The shared libraries `ldd` lists for the binary, for check_runtime_libs.
# Exits 77 (skip) without a usable binary.
runtime_libs() {
  if [[ ! -x $binary ]]; then
    echo "no postd binary at $binary (build one, or pass its path): skipped"
    return 77
  fi
  # The image ships a Release build without sanitizers; others link more
  # (a Debug build keeps libboost_system, Clang links its runtimes statically).
  local cache type
  cache=$(dirname -- "$binary")/CMakeCache.txt
  type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache" 2>/dev/null) || true
  if [[ -n $type && $type != Release ]] || grep -qaE '__(asan|tsan|ubsan)_init' "$binary"; then
    echo "$binary is not a plain Release build (${type:-?}, or sanitized), not what the image ships: skipped"
    return 77
  fi
  KIT_LIBS=$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
  [[ -n $KIT_LIBS ]] || { echo "ldd $binary listed no libraries"; return 1; }
  KIT_LIBS=$KIT_LIBS kit runtime_libs
}

check compose-config compose_valid
if [[ -s $tmp/compose.yml ]]; then
  check compose-topology kit compose
  check nginx-topology kit nginx_topology
  check settings-names kit settings
  check probe-paths kit probes
  check shutdown-grace kit grace
else
  failed+=("(compose-dependent checks not run)")
fi
check k8s-manifests kit k8s_yaml
check nginx-t nginx_test
check dockerfile-build kit dockerfile_build
check dockerfile-packages kit dockerfile_packages
check dockerfile-final kit dockerfile_runtime
check runtime-libraries runtime_libs

if ((${#failed[@]})); then
  echo "deploy_kit.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "deploy_kit.sh: all checks passed"
