// Offline checks of configs/kubernetes/ (installed by ./dev deps; run by ctest and ./dev image).
//
//   node tools/node/k8s.mjs check FILE...        schema and consistency checks; exit 1 on a finding
//   node tools/node/k8s.mjs self-test FILE       the checks must catch broken copies of FILE
//   node tools/node/k8s.mjs run-spec FILE DIR    what ./dev image needs to run the image as the
//                                                manifest does (shell assignments on stdout)
//
// Two independent schema checks, both from the Kubernetes API's own OpenAPI definitions:
// kubernetes-models validates each object (types, required fields, formats), and the TypeScript
// compiler checks it against kubernetes-types, whose excess-property check rejects every field
// name the API does not have. Then tokengate's own rules: the sidecar is native, the settings
// agree with the config file, Secrets are mounted whole.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import YAML from "yaml";
import ts from "typescript";

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);

// kind -> [apiVersion, kubernetes-models module, kubernetes-types module]
const kinds = {
  ConfigMap: ["v1", "kubernetes-models/v1/ConfigMap", "kubernetes-types/core/v1"],
  Secret: ["v1", "kubernetes-models/v1/Secret", "kubernetes-types/core/v1"],
  Service: ["v1", "kubernetes-models/v1/Service", "kubernetes-types/core/v1"],
  PersistentVolumeClaim: ["v1", "kubernetes-models/v1/PersistentVolumeClaim", "kubernetes-types/core/v1"],
  Deployment: ["apps/v1", "kubernetes-models/apps/v1/Deployment", "kubernetes-types/apps/v1"],
};

// Reads a multi-document manifest as kubectl does (YAML 1.1: 0440 is octal), refusing
// duplicate keys and anything the parser warns about.
function load(file) {
  const text = fs.readFileSync(file, "utf8");
  const docs = YAML.parseAllDocuments(text, { version: "1.1", uniqueKeys: true, prettyErrors: true });
  const objects = [];
  for (const d of docs) {
    const problems = [...d.errors, ...d.warnings];
    if (problems.length) throw new Error(`${file}: ${problems.map((e) => e.message).join("; ")}`);
    const o = d.toJS();
    if (o !== null) objects.push(o);
  }
  return objects;
}

function modelFindings(objects) {
  const findings = [];
  objects.forEach((o, i) => {
    const k = kinds[o.kind];
    if (!k) return findings.push(`document ${i + 1}: kind ${o.kind} is not one this check knows`);
    if (o.apiVersion !== k[0]) findings.push(`${o.kind}: apiVersion ${o.apiVersion}, not ${k[0]}`);
    const Model = require(k[1])[o.kind];
    try {
      new Model(o).validate();
    } catch (e) {
      findings.push(`${o.kind} ${o.metadata?.name}: ${e.message}`);
    }
  });
  return findings;
}

// One TypeScript program for several sets of objects (a compiler start-up is seconds): the
// findings of each set.
function typeFindings(sets) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tokengate-k8s-"));
  try {
    const lines = [];
    const owner = []; // line -> [set, object]
    const imports = new Set();
    sets.forEach((objects, n) => {
      objects.forEach((o, i) => {
        const k = kinds[o.kind];
        if (!k) return;
        imports.add(`import type { ${o.kind} } from "${k[2]}";`);
        for (const l of `export const doc${n}_${i}: ${o.kind} = ${JSON.stringify(o, null, 2)};`.split("\n")) {
          lines.push(l);
          owner.push([n, o]);
        }
      });
    });
    const head = [...imports];
    const file = path.join(dir, "manifest.ts");
    fs.writeFileSync(file, [...head, ...lines].join("\n") + "\n");
    const program = ts.createProgram([file], {
      noEmit: true,
      strict: true,
      // Only the ES5 library: no DOM, and no checking of kubernetes-types' own declarations.
      lib: ["lib.es5.d.ts"],
      skipLibCheck: true,
      types: [],
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      typeRoots: [],
      baseUrl: here,
      paths: { "kubernetes-types/*": [path.join(here, "node_modules/kubernetes-types/*")] },
    });
    const findings = sets.map(() => []);
    for (const d of ts.getPreEmitDiagnostics(program)) {
      const msg = ts.flattenDiagnosticMessageText(d.messageText, " ");
      if (!d.file) {
        findings.forEach((f) => f.push(msg));
        continue;
      }
      // Name the object and the line of the finding rather than a temporary file's line.
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      const at = owner[line - head.length];
      if (!at) {
        findings.forEach((f) => f.push(msg));
        continue;
      }
      const [n, o] = at;
      findings[n].push(`${o.kind} ${o.metadata?.name}: ${msg} (near: ${lines[line - head.length].trim()})`);
    }
    return findings;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// The parts of the manifest that tokengate's settings depend on.
function sidecarOf(objects) {
  const deployment = objects.find((o) => o.kind === "Deployment");
  if (!deployment) throw new Error("no Deployment");
  const pod = deployment.spec.template.spec;
  const sidecar = (pod.initContainers || []).find((c) => c.name === "tokengate");
  if (!sidecar) throw new Error("no init container named tokengate");
  const env = Object.fromEntries((sidecar.env || []).map((e) => [e.name, e.value]));
  const volume = (name) => (pod.volumes || []).find((v) => v.name === name);
  const mountOf = (pred) => {
    const m = (sidecar.volumeMounts || []).find((vm) => pred(volume(vm.name) || {}));
    return m;
  };
  const configMount = mountOf((v) => v.configMap);
  const cm = configMount && objects.find(
    (o) => o.kind === "ConfigMap" && o.metadata.name === volume(configMount.name).configMap.name);
  return { deployment, pod, sidecar, env, volume, mountOf, configMount, cm };
}

function hostPort(s) {
  const i = s.lastIndexOf(":");
  return [s.slice(0, i), Number(s.slice(i + 1))];
}

function tokengateFindings(objects) {
  const f = [];
  let s;
  try {
    s = sidecarOf(objects);
  } catch (e) {
    return [e.message];
  }
  const { deployment, pod, sidecar, env, volume, mountOf, configMount, cm } = s;
  if (sidecar.restartPolicy !== "Always") f.push("the tokengate init container is not a native sidecar (restartPolicy: Always)");
  const all = [...(pod.initContainers || []), ...(pod.containers || [])];
  for (const c of all)
    for (const m of c.volumeMounts || [])
      if (m.subPath || m.subPathExpr) f.push(`${c.name}: ${m.name} is mounted with subPath, which never sees an update`);
  const sc = { ...(pod.securityContext || {}), ...(sidecar.securityContext || {}) };
  if (sc.runAsNonRoot !== true || !(sc.runAsUser > 0)) f.push("tokengate does not run as a non-root user");
  if (sc.readOnlyRootFilesystem !== true) f.push("tokengate's root file system is not read-only");
  if (!configMount || !cm) return [...f, "tokengate's config file does not come from a ConfigMap"];
  const configPath = env.TOKENGATE_CONFIG;
  if (!configPath || path.dirname(configPath) !== configMount.mountPath)
    f.push(`TOKENGATE_CONFIG (${configPath}) is not a file of the ConfigMap mount ${configMount.mountPath}`);
  const text = cm.data?.[path.basename(configPath || "")];
  if (text === undefined) return [...f, `the ConfigMap has no key ${path.basename(configPath || "")}`];
  const config = JSON.parse(text);
  for (const name of Object.keys(env))
    if (!name.startsWith("TOKENGATE_")) f.push(`env ${name} is not a tokengate setting`);
  const ports = Object.fromEntries((sidecar.ports || []).map((p) => [p.name, p.containerPort]));
  const [, listenPort] = hostPort(config.listen || "");
  const [, adminPort] = hostPort(config.admin_listen || "");
  if (ports.http !== listenPort) f.push(`containerPort http ${ports.http} is not the listen port ${listenPort}`);
  if (ports.admin !== adminPort) f.push(`containerPort admin ${ports.admin} is not the admin_listen port ${adminPort}`);
  for (const [probe, want] of [["startupProbe", "/healthz"], ["readinessProbe", "/readyz"], ["livenessProbe", "/healthz"]]) {
    const p = sidecar[probe]?.httpGet;
    if (!p || p.path !== want || (p.port !== "admin" && p.port !== adminPort))
      f.push(`${probe} is not GET ${want} on the admin port`);
  }
  const scrapePort = deployment.spec.template.metadata.annotations?.["prometheus.io/port"];
  if (scrapePort !== undefined && Number(scrapePort) !== adminPort)
    f.push(`prometheus.io/port ${scrapePort} is not the admin port ${adminPort}, where /metrics is`);
  // The application stops first (tokengate after it): its preStop delay keeps the pod serving
  // while it leaves the Service's endpoints.
  for (const c of pod.containers || [])
    if (!c.lifecycle?.preStop) f.push(`${c.name} has no preStop delay for endpoint removal`);
  const dataMount = mountOf((v) => v.persistentVolumeClaim || v.emptyDir);
  if (!dataMount || dataMount.mountPath !== config.data_dir) f.push(`data_dir ${config.data_dir} is not on a volume`);
  const bootstrapMount = (sidecar.volumeMounts || []).find((m) => m.mountPath === path.dirname(config.bootstrap_token_file || ""));
  if (!bootstrapMount || !volume(bootstrapMount.name)?.secret)
    f.push(`bootstrap_token_file ${config.bootstrap_token_file} is not in a Secret mounted as a directory`);
  if (!sidecar.resources?.requests?.cpu || !sidecar.resources?.requests?.memory) f.push("tokengate has no resource requests");
  const svc = objects.find((o) => o.kind === "Service");
  if (!svc) f.push("no Service");
  else {
    for (const [k, v] of Object.entries(svc.spec.selector || {}))
      if (deployment.spec.template.metadata.labels?.[k] !== v) f.push(`the Service selects ${k}=${v}, which the pod does not carry`);
    for (const p of svc.spec.ports || [])
      if (p.targetPort !== "http" && p.targetPort !== listenPort) f.push(`the Service sends port ${p.port} elsewhere than tokengate's main listener`);
  }
  return f;
}

function checkAll(sets) {
  const types = typeFindings(sets);
  return sets.map((objects, n) => [...modelFindings(objects), ...types[n], ...tokengateFindings(objects)]);
}

const [command, file, out] = process.argv.slice(2);
if (command === "check") {
  let failed = false;
  for (const f of process.argv.slice(3)) {
    const [findings] = checkAll([load(f)]);
    for (const x of findings) console.error(`${f}: ${x}`);
    if (findings.length) failed = true;
    else console.log(`${f}: ${load(f).length} objects conform to the Kubernetes API schemas and tokengate's settings`);
  }
  process.exit(failed ? 1 : 0);
} else if (command === "self-test") {
  // Each mutation must be caught: the checks are worth only what they refuse.
  const fresh = () => load(file);
  const dep = (o) => o.find((x) => x.kind === "Deployment").spec.template.spec;
  const sidecar = (o) => dep(o).initContainers.find((c) => c.name === "tokengate");
  const mutations = {
    "an unknown container field": (o) => { sidecar(o).readinesProbe = sidecar(o).readinessProbe; },
    "an unknown pod field": (o) => { dep(o).hostNetworking = true; },
    "a misspelt probe field": (o) => { sidecar(o).livenessProbe.httpGet.paht = "/healthz"; },
    "a string where a number goes": (o) => { sidecar(o).ports[0].containerPort = "8080"; },
    "a missing required field": (o) => { delete sidecar(o).name; },
    "an unknown Service field": (o) => { o.find((x) => x.kind === "Service").spec.selectors = {}; },
    "a subPath mount": (o) => { sidecar(o).volumeMounts[1].subPath = "admin-token"; },
    "a plain init container": (o) => { delete sidecar(o).restartPolicy; },
    "a writable root": (o) => { sidecar(o).securityContext.readOnlyRootFilesystem = false; },
    "a probe on the main port": (o) => { sidecar(o).readinessProbe.httpGet.port = "http"; },
    "metrics scraped on the main port": (o) => {
      o.find((x) => x.kind === "Deployment").spec.template.metadata.annotations["prometheus.io/port"] = "8080";
    },
    "no preStop delay": (o) => { delete dep(o).containers[0].lifecycle; },
    "a config file that moved": (o) => { sidecar(o).env[0].value = "/etc/other/tokengate.json"; },
  };
  const names = Object.keys(mutations);
  const sets = [fresh(), ...names.map((what) => { const o = fresh(); mutations[what](o); return o; })];
  const [base, ...results] = checkAll(sets);
  if (base.length) { console.error(`the manifest itself fails: ${base.join("; ")}`); process.exit(1); }
  let missed = 0;
  names.forEach((what, n) => {
    const findings = results[n];
    if (findings.length) console.log(`caught ${what}: ${findings[0]}`);
    else { console.error(`MISSED ${what}`); missed++; }
  });
  process.exit(missed ? 1 : 0);
} else if (command === "run-spec") {
  const { pod, sidecar, env, mountOf, configMount, cm } = sidecarOf(load(file));
  const configPath = env.TOKENGATE_CONFIG;
  const config = JSON.parse(cm.data[path.basename(configPath)]);
  fs.mkdirSync(path.join(out, "config"), { recursive: true });
  fs.writeFileSync(path.join(out, "config", path.basename(configPath)), cm.data[path.basename(configPath)]);
  fs.writeFileSync(path.join(out, "env"), Object.entries(env).map(([k, v]) => `${k}=${v}\n`).join(""));
  const sc = { ...(pod.securityContext || {}), ...(sidecar.securityContext || {}) };
  const q = (v) => `'${String(v).replace(/'/g, "'\\''")}'`;
  console.log(`CONFIG_MOUNT=${q(configMount.mountPath)}`);
  console.log(`BOOTSTRAP_MOUNT=${q(path.dirname(config.bootstrap_token_file))}`);
  console.log(`DATA_MOUNT=${q(mountOf((v) => v.persistentVolumeClaim || v.emptyDir).mountPath)}`);
  console.log(`RUN_AS_USER=${q(sc.runAsUser)}`);
  console.log(`RUN_AS_GROUP=${q(pod.securityContext?.fsGroup ?? sc.runAsGroup)}`);
  console.log(`ENV_FILE=${q(path.join(out, "env"))}`);
} else {
  console.error("usage: k8s.mjs check FILE... | self-test FILE | run-spec FILE DIR");
  process.exit(2);
}
