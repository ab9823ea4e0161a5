// Checks docs/openapi.yaml (installed by ./dev deps; run by ctest):
//
//   node tools/node/openapi.mjs validate DOC
//       DOC is valid OpenAPI 3 (swagger-parser: the OpenAPI 3.0 JSON schema and every $ref), and
//       every schema in it compiles under Ajv's strict mode (no unknown keyword slips through).
//   node tools/node/openapi.mjs conformance DOC TOKENGATE
//       starts the real TOKENGATE binary on free loopback ports with an empty store, makes every
//       kind of call of the token API (each operation, each status but 503), and checks each
//       answer against DOC: the status is the one the case expects and DOC lists for the
//       operation, the body conforms to that response's schema (or is empty where DOC has no
//       content), required headers are there and valid. Then every (operation, status) that DOC
//       lists must have been seen, except 503 (the store failing cannot be caused from outside).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import http from "node:http";
import { spawn } from "node:child_process";
import YAML from "yaml";
import SwaggerParser from "@apidevtools/swagger-parser";
import Ajv from "ajv";
import addFormats from "ajv-formats";

function newAjv() {
  const ajv = new Ajv({ strict: true, strictRequired: false, allErrors: true });
  addFormats(ajv);
  ajv.addVocabulary(["example"]);
  return ajv;
}

async function loadDoc(file, mutate = () => {}) {
  const text = fs.readFileSync(file, "utf8");
  const doc = YAML.parse(text, { uniqueKeys: true });
  mutate(doc);
  await SwaggerParser.validate(structuredClone(doc));
  if (!/^3\.0\.\d+$/.test(doc.openapi)) throw new Error(`openapi is ${doc.openapi}, not 3.0.x`);
  return SwaggerParser.dereference(structuredClone(doc));
}

const methods = ["get", "head", "post", "put", "patch", "delete", "options", "trace"];

function* operations(doc) {
  for (const [tpl, item] of Object.entries(doc.paths))
    for (const m of methods) if (item[m]) yield { tpl, method: m, op: item[m] };
}

async function validate(file) {
  const doc = await loadDoc(file);
  const ajv = newAjv();
  const ids = new Set();
  let schemas = 0;
  for (const { tpl, method, op } of operations(doc)) {
    if (!op.operationId || ids.has(op.operationId)) throw new Error(`${method} ${tpl}: missing or repeated operationId`);
    ids.add(op.operationId);
    for (const [status, r] of Object.entries(op.responses)) {
      for (const [type, media] of Object.entries(r.content || {})) {
        if (type !== "application/json") throw new Error(`${op.operationId} ${status}: content ${type}`);
        ajv.compile(media.schema);
        schemas++;
      }
      if (Number(status) >= 400 && method !== "head" && !r.content)
        throw new Error(`${op.operationId} ${status}: an error answer without the error shape`);
    }
    for (const media of Object.values(op.requestBody?.content || {})) (ajv.compile(media.schema), schemas++);
  }
  console.log(`${file}: valid OpenAPI ${doc.openapi}; ${ids.size} operations, ${schemas} schemas compile`);
}

// --- conformance -------------------------------------------------------------------------------

function request(port, method, target, { key, keys, body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (key !== undefined) h["X-API-Key"] = key;
    if (keys) h["X-API-Key"] = keys; // an array: one field per value
    let payload;
    if (body !== undefined) {
      payload = typeof body === "string" ? body : JSON.stringify(body);
      h["Content-Type"] = "application/json";
      h["Content-Length"] = Buffer.byteLength(payload);
    }
    const req = http.request({ host: "127.0.0.1", port, method, path: target, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.setTimeout(10000, () => req.destroy(new Error(`${method} ${target}: no answer in 10 s`)));
    req.end(payload);
  });
}

function templateOf(doc, pathname) {
  for (const tpl of Object.keys(doc.paths)) {
    const re = new RegExp("^" + tpl.replace(/\{[^}]+\}/g, "[^/]+") + "$");
    if (re.test(pathname)) return tpl;
  }
  return null;
}

async function startTokengate(binary, dir) {
  const child = spawn(binary, ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
    "--data-dir", path.join(dir, "data"), "--upstream", "http://127.0.0.1:9"], {
    env: { ...process.env, TOKENGATE_MAX_ADMIN_BODY_BYTES: "4096", TOKENGATE_CONFIG: "" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  const listening = new Promise((resolve, reject) => {
    child.stdout.on("data", (c) => {
      out += c;
      const m = /"msg":"listening".*?"listen":"127\.0\.0\.1:(\d+)"/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on("exit", (code) => reject(new Error(`tokengate exited with ${code} at start: ${out}`)));
    setTimeout(() => reject(new Error(`tokengate did not listen in 30 s: ${out}`)), 30000).unref();
  });
  const port = await listening;
  return { child, port, log: () => out };
}

async function conformance(file, binary, mutate) {
  const doc = await loadDoc(file, mutate);
  const ajv = newAjv();
  const compiled = new Map();
  const schemaCheck = (schema) => {
    if (!compiled.has(schema)) compiled.set(schema, ajv.compile(schema));
    return compiled.get(schema);
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tokengate-openapi-"));
  const gate = await startTokengate(binary, dir);
  const seen = new Set();
  const failures = [];
  let checked = 0;

  // call(what, expected status, method, target, options): the answer, checked against the doc.
  const call = async (what, want, method, target, opts = {}) => {
    const res = await request(gate.port, method, target, opts);
    const url = new URL(target, "http://x");
    const tpl = templateOf(doc, url.pathname);
    const fail = (msg) => failures.push(`${what} (${method} ${target} -> ${res.status}): ${msg}`);
    checked++;
    if (res.status !== want) fail(`expected ${want}; body ${res.body}`);
    const op = tpl && doc.paths[tpl][method.toLowerCase()];
    if (!op) return fail("the document has no such operation"), res;
    const r = op.responses[String(res.status)];
    if (!r) return fail(`the document lists no ${res.status} for ${op.operationId}`), res;
    seen.add(`${op.operationId} ${res.status}`);
    for (const [name, h] of Object.entries(r.headers || {})) {
      const v = res.headers[name.toLowerCase()];
      if (v === undefined) { if (h.required) fail(`no ${name} header`); continue; }
      const ok = schemaCheck(h.schema);
      if (!ok(v)) fail(`header ${name}: ${v}: ${ajv.errorsText(ok.errors)}`);
    }
    if (!r.content) {
      if (res.body !== "") fail(`the document says no body; got ${res.body}`);
      return res;
    }
    const type = (res.headers["content-type"] || "").split(";")[0].trim();
    const media = r.content[type];
    if (!media) return fail(`Content-Type ${type} is not one of ${Object.keys(r.content)}`), res;
    let json;
    try {
      json = JSON.parse(res.body);
    } catch {
      return fail(`not JSON: ${res.body}`), res;
    }
    const ok = schemaCheck(media.schema);
    if (!ok(json)) fail(`does not conform to the ${res.status} schema: ${ajv.errorsText(ok.errors)}; body ${res.body}`);
    res.json = json;
    return res;
  };
  // What the README calls valid bodies must conform to the request schema too.
  const requestSchema = schemaCheck(doc.paths["/api-tokens"].post.requestBody.content["application/json"].schema);
  const body = (b) => {
    if (!requestSchema(b)) failures.push(`request body ${JSON.stringify(b)} does not conform: ${ajv.errorsText(requestSchema.errors)}`);
    return b;
  };

  try {
    const admin = fs.readFileSync(path.join(dir, "data", "admin-token"), "utf8").trim();
    const none = "00000000-0000-4000-8000-000000000000";
    const big = JSON.stringify({ name: "x".repeat(5000), permissions: [] });

    // create
    const reader = (await call("create a reader", 200, "POST", "/api-tokens",
      { key: admin, body: body({ name: "reader", permissions: ["OrganizationAPITokenRead"] }) })).json;
    let bare = (await call("create a token without permissions", 200, "POST", "/api-tokens",
      { key: admin, body: body({ name: "bare", permissions: [] }) })).json;
    const full = (await call("create with every field", 200, "POST", "/api-tokens", {
      key: admin,
      body: body({ name: "ci", permissions: ["RuleRead", "AlertRead", "AlertRead"],
        allowedCIDRBlocks: ["10.1.2.3/8", "127.0.0.1", "2001:DB8::/32"], expiresAt: "2099-01-01T00:00:00+02:00" }),
    })).json;
    if (full && full.expiresAt !== "2098-12-31T22:00:00Z") failures.push(`expiresAt came back as ${full.expiresAt}`);
    await call("create with expiresAt null", 200, "POST", "/api-tokens",
      { key: admin, body: body({ name: "forever", permissions: [], expiresAt: null }) });
    for (const n of ["p1", "p2", "p3"])
      await call(`create ${n}`, 200, "POST", "/api-tokens", { key: admin, body: body({ name: n, permissions: ["AlertRead"] }) });
    const limited = (await call("create with a rate limit", 200, "POST", "/api-tokens",
      { key: admin, body: body({ name: "limited", permissions: [], rateLimit: { requests: 5, perSeconds: 60 } }) })).json;
    if (limited && limited.rateLimit?.requests !== 5) failures.push("rateLimit did not come back");
    await call("create with a bad rate limit", 400, "POST", "/api-tokens",
      { key: admin, body: { name: "a", permissions: [], rateLimit: { requests: 0, perSeconds: 60 } } });
    await call("create without a name", 400, "POST", "/api-tokens", { key: admin, body: { permissions: [] } });
    await call("create with malformed JSON", 400, "POST", "/api-tokens", { key: admin, body: "{\"name\":" });
    await call("create with an unknown field", 400, "POST", "/api-tokens", { key: admin, body: { name: "a", permissions: [], allowedCidrBlocks: [] } });
    await call("create with a key given twice", 400, "POST", "/api-tokens", { key: admin, body: '{"name":"a","name":"b","permissions":[]}' });
    await call("create with an unknown permission", 400, "POST", "/api-tokens", { key: admin, body: { name: "a", permissions: ["Root"] } });
    await call("create without a key", 401, "POST", "/api-tokens", { body: { name: "a", permissions: [] } });
    await call("create without the permission", 403, "POST", "/api-tokens", { key: reader.value, body: { name: "a", permissions: [] } });
    await call("create with a body over the limit", 413, "POST", "/api-tokens", { key: admin, body: big });

    // list and page
    const all = (await call("list", 200, "GET", "/api-tokens", { key: admin })).json;
    const ids = [];
    let cursor = "";
    for (let page = 0; page < 20; page++) {
      const res = await call(`list page ${page + 1}`, 200, "GET", `/api-tokens?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { key: reader.value });
      ids.push(...res.json.results.map((t) => t.id));
      if (res.json.results.length > 2) failures.push(`a page of limit 2 held ${res.json.results.length}`);
      if (!res.json.next) break;
      cursor = res.json.next;
    }
    if (ids.length !== all.results.length || new Set(ids).size !== ids.length)
      failures.push(`paging saw ${ids.length} ids (${new Set(ids).size} distinct), the list ${all.results.length}`);
    await call("list with limit 0", 400, "GET", "/api-tokens?limit=0", { key: admin });
    await call("list with a bad cursor", 400, "GET", "/api-tokens?cursor=%21%21", { key: admin });
    await call("list with limit twice", 400, "GET", "/api-tokens?limit=1&limit=2", { key: admin });
    await call("list with a malformed key", 401, "GET", "/api-tokens", { key: "tg_nope" });
    await call("list without the permission", 403, "GET", "/api-tokens", { key: bare.value });
    await call("HEAD the list", 200, "HEAD", "/api-tokens", { key: admin });
    await call("HEAD the list with limit 0", 400, "HEAD", "/api-tokens?limit=0", { key: admin });
    await call("HEAD the list without a key", 401, "HEAD", "/api-tokens");
    await call("HEAD the list without the permission", 403, "HEAD", "/api-tokens", { key: bare.value });

    // get
    await call("get", 200, "GET", `/api-tokens/${full.id}`, { key: reader.value });
    await call("get self without permissions", 200, "GET", "/api-tokens/self", { key: bare.value });
    await call("get with X-API-Key twice", 400, "GET", `/api-tokens/${full.id}`, { keys: [admin, admin] });
    await call("get without a key", 401, "GET", `/api-tokens/${full.id}`);
    await call("get another token without permissions", 403, "GET", `/api-tokens/${full.id}`, { key: bare.value });
    await call("get an unknown id", 404, "GET", `/api-tokens/${none}`, { key: admin });
    const head = await call("HEAD a token", 200, "HEAD", `/api-tokens/${full.id}`, { key: admin });
    const got = await call("get it again", 200, "GET", `/api-tokens/${full.id}`, { key: admin });
    if (head.headers["content-length"] !== String(Buffer.byteLength(got.body)))
      failures.push(`HEAD says Content-Length ${head.headers["content-length"]}, GET sends ${Buffer.byteLength(got.body)} bytes`);
    await call("HEAD with X-API-Key twice", 400, "HEAD", `/api-tokens/${full.id}`, { keys: [admin, admin] });
    await call("HEAD a token without a key", 401, "HEAD", `/api-tokens/${full.id}`);
    await call("HEAD another token without permissions", 403, "HEAD", `/api-tokens/${full.id}`, { key: bare.value });
    await call("HEAD an unknown id", 404, "HEAD", `/api-tokens/${none}`, { key: admin });

    // update
    await call("update", 200, "POST", `/api-tokens/${full.id}`, { key: admin, body: body({ name: "ci-2", permissions: ["AlertRead"] }) });
    await call("update with an invalid CIDR block", 400, "POST", `/api-tokens/${full.id}`,
      { key: admin, body: { name: "ci", permissions: [], allowedCIDRBlocks: ["10.0.0.0/33"] } });
    await call("update without a key", 401, "POST", `/api-tokens/${full.id}`, { body: { name: "ci", permissions: [] } });
    await call("update without the permission", 403, "POST", `/api-tokens/${full.id}`, { key: reader.value, body: { name: "ci", permissions: [] } });
    await call("update an unknown id", 404, "POST", `/api-tokens/${none}`, { key: admin, body: { name: "ci", permissions: [] } });
    await call("update with a body over the limit", 413, "POST", `/api-tokens/${full.id}`, { key: admin, body: big });

    // rotate
    await call("rotate", 200, "POST", `/api-tokens/${full.id}/rotate`, { key: admin });
    const rotated = (await call("rotate self without permissions", 200, "POST", "/api-tokens/self/rotate", { key: bare.value })).json;
    await call("the old value after rotation", 401, "GET", "/api-tokens/self", { key: bare.value });
    bare = rotated;
    const overlapped = (await call("rotate with an overlap", 200, "POST", `/api-tokens/${limited.id}/rotate`,
      { key: admin, body: { previousValueValidFor: 600 } })).json;
    const old = await call("get with the replaced value", 200, "GET", "/api-tokens/self", { key: limited.value });
    if (!old.headers["x-token-rotated"]) failures.push("no X-Token-Rotated for the replaced value");
    const during = (await call("get a token during its overlap", 200, "GET", `/api-tokens/${limited.id}`, { key: admin })).json;
    if (!during?.previousValueExpiresAt || !during?.previousValueLastUsedAt) failures.push("no previousValue fields during an overlap");
    await call("rotate with a bad overlap", 400, "POST", `/api-tokens/${limited.id}/rotate`,
      { key: admin, body: { previousValueValidFor: 604801 } });
    await call("the new value after an overlapped rotation", 200, "GET", "/api-tokens/self", { key: overlapped.value });
    await call("rotate with X-API-Key twice", 400, "POST", `/api-tokens/${full.id}/rotate`, { keys: [admin, admin] });
    await call("rotate without a key", 401, "POST", `/api-tokens/${full.id}/rotate`);
    await call("rotate another token without permissions", 403, "POST", `/api-tokens/${full.id}/rotate`, { key: bare.value });
    await call("rotate an unknown id", 404, "POST", `/api-tokens/${none}/rotate`, { key: admin });
    await call("rotate with a body over the limit", 413, "POST", `/api-tokens/${full.id}/rotate`, { key: admin, body: big });

    // delete
    const victim = all.results.find((t) => t.name === "p1").id;
    await call("delete", 204, "DELETE", `/api-tokens/${victim}`, { key: admin });
    await call("get a deleted token", 404, "GET", `/api-tokens/${victim}`, { key: admin });
    await call("delete again", 404, "DELETE", `/api-tokens/${victim}`, { key: admin });
    await call("delete with X-API-Key twice", 400, "DELETE", `/api-tokens/${full.id}`, { keys: [admin, admin] });
    await call("delete without a key", 401, "DELETE", `/api-tokens/${full.id}`);
    await call("delete without the permission", 403, "DELETE", `/api-tokens/${full.id}`, { key: reader.value });

    // methods the paths do not have
    for (const [m, target] of [["PUT", "/api-tokens"], ["PATCH", "/api-tokens"], ["DELETE", "/api-tokens"],
      ["PUT", `/api-tokens/${full.id}`], ["PATCH", `/api-tokens/${full.id}`],
      ["GET", `/api-tokens/${full.id}/rotate`], ["DELETE", `/api-tokens/${full.id}/rotate`]])
      await call(`${m} ${target}`, 405, m, target, { key: admin });

    // No key value in the log.
    for (const k of [admin, reader.value, full.value, rotated.value])
      if (k && gate.log().includes(k)) failures.push("a key value is in tokengate's log");
  } finally {
    gate.child.kill("SIGTERM");
    await new Promise((r) => gate.child.on("exit", r));
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const missing = [];
  for (const { op } of operations(doc))
    for (const status of Object.keys(op.responses))
      if (status !== "503" && !seen.has(`${op.operationId} ${status}`)) missing.push(`${op.operationId} ${status}`);
  if (missing.length) failures.push(`documented but never seen: ${missing.join(", ")}`);
  for (const f of failures) console.error(f);
  console.log(`${checked} answers checked against ${file}; ${seen.size} (operation, status) pairs seen; ${failures.length} failures`);
  return failures.length === 0;
}

// Each wrong document must fail against the same real answers: the check is worth only what it
// refuses.
const mutations = {
  "a field the answers carry is not in the schema": (d) => { delete d.components.schemas.APIToken.properties.lastUsedAt; },
  "value required in get": (d) => { d.components.schemas.APITokenWithoutValue.allOf[1] = { type: "object", required: ["value"] }; },
  "an error shape with another field": (d) => { d.components.schemas.Error.required = ["message", "code"]; },
  "an Allow header missing a method": (d) => { d.components.headers.Allow.schema.enum = ["GET, HEAD, POST"]; },
  "timestamps with fractions": (d) => { d.components.schemas.Timestamp.pattern = "\\.[0-9]+Z$"; },
  "a status the API does not answer": (d) => { delete d.paths["/api-tokens/{id}"].delete.responses["204"]; },
  "a documented status never seen": (d) => { d.paths["/api-tokens"].get.responses["404"] = d.paths["/api-tokens/{id}"].get.responses["404"]; },
};

const [command, doc, binary] = process.argv.slice(2);
try {
  if (command === "validate") await validate(doc);
  else if (command === "conformance") process.exitCode = (await conformance(doc, binary)) ? 0 : 1;
  else if (command === "self-test") {
    let missed = 0;
    for (const [what, mutate] of Object.entries(mutations)) {
      const log = console.error;
      console.error = () => {};
      const passed = await conformance(doc, binary, mutate).finally(() => { console.error = log; });
      if (passed) { console.error(`MISSED: ${what}`); missed++; } else console.log(`caught: ${what}`);
    }
    process.exitCode = missed ? 1 : 0;
  } else {
    console.error("usage: openapi.mjs validate DOC | conformance DOC TOKENGATE | self-test DOC TOKENGATE");
    process.exitCode = 2;
  }
} catch (e) {
  console.error(e.stack || String(e));
  process.exitCode = 1;
}
