// Validates Kubernetes manifests against the API's schema, offline:
//
//   node kube_schema.mjs NODE_DIR FILE.yaml…
//
// NODE_DIR holds node_modules with kubernetes-models (the Kubernetes
// OpenAPI schema compiled to validators: types, required fields, enums) and
// yaml (setup.sh --test-tools installs both). Those validators accept
// unknown fields, and an unknown field is exactly the mistake a generator
// makes silently (`readonly` for `readOnly` mounts nothing read-only), so
// every object is also walked against its interface's declared fields
// (kubernetes-models' type declarations, generated from the same schema):
// any field the schema does not have is an error.
//
// Prints one line per document ("valid FILE#N KIND" or "invalid FILE#N:
// what"); exit status 1 when any document is invalid, 2 for bad usage.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [nodeDir, ...files] = process.argv.slice(2);
if (!nodeDir || files.length === 0) {
  console.error("usage: node kube_schema.mjs NODE_DIR FILE.yaml…");
  process.exit(2);
}
const modules = path.join(nodeDir, "node_modules");
const require = createRequire(path.join(modules, "x.js"));
const YAML = require("yaml");
const models = path.join(modules, "kubernetes-models");
const kinds = {
  "v1/ConfigMap": { module: "v1/ConfigMap.js", name: "ConfigMap" },
  "v1/Pod": { module: "v1/Pod.js", name: "Pod" },
  "batch/v1/Job": { module: "batch/v1/Job.js", name: "Job" },
};

// ---- declared fields, from the .d.ts of each model --------------------------
const declared = new Map();  // .d.ts path -> { fields: Map(name -> type), imports: Map(type -> .d.ts) }
function declaration(file) {
  if (declared.has(file)) return declared.get(file);
  const text = fs.readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
    const spec = m[2];
    const target = spec.startsWith(".")
      ? path.resolve(path.dirname(file), spec.replace(/\.js$/, ".d.ts"))
      : path.join(modules, spec + ".d.ts");
    imports.set(m[1], target);
  }
  const fields = new Map();
  const body = text.match(/^export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/m);
  if (!body) throw new Error(`no interface in ${file}`);
  // A field per line at this indentation; a type spanning lines (an inline
  // map such as labels) is kept as "" — it names no model to walk into.
  for (const m of body[1].matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) fields.set(m[1], m[2].replace(/;$/, ""));
  const result = { fields, imports };
  declared.set(file, result);
  return result;
}

function walk(value, file, where, errors) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return;
  const { fields, imports } = declaration(file);
  for (const [key, child] of Object.entries(value)) {
    if (!fields.has(key)) {
      errors.push(`${where}/${key}: no such field in the schema`);
      continue;
    }
    const type = fields.get(key);
    const array = type.match(/^Array<(\w+)>$/);
    const target = imports.get(array ? array[1] : type);
    if (!target) continue;  // a scalar, a map or a union: the schema validator's part
    if (array && Array.isArray(child)) child.forEach((c, i) => walk(c, target, `${where}/${key}/${i}`, errors));
    else walk(child, target, `${where}/${key}`, errors);
  }
}

let bad = 0;
for (const file of files) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  for (const [i, doc] of docs.entries()) {
    const label = `${file}#${i + 1}`;
    if (doc.errors.length > 0) {
      console.log(`invalid ${label}: YAML: ${doc.errors[0].message}`);
      bad++;
      continue;
    }
    const object = doc.toJS();
    const kind = kinds[`${object?.apiVersion}/${object?.kind}`];
    if (!kind) {
      console.log(`invalid ${label}: no schema here for ${object?.apiVersion} ${object?.kind}`);
      bad++;
      continue;
    }
    const errors = [];
    const Model = (await import(pathToFileURL(path.join(models, kind.module)).href))[kind.name];
    try {
      new Model(object).validate();
    } catch (e) {
      errors.push(e.message);
    }
    walk(object, path.join(models, kind.module.replace(/\.js$/, ".d.ts")), "", errors);
    if (errors.length > 0) {
      console.log(`invalid ${label}: ${errors.join("; ")}`);
      bad++;
    } else {
      console.log(`valid ${label} ${object.kind}`);
    }
  }
}
process.exit(bad > 0 ? 1 : 0);
