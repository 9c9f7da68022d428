/**
 * Offline validation of the Kubernetes manifests in k8s/: what CI runs (`npm run k8s:validate`),
 * with no cluster and no kubectl.
 *
 * 1. Schema: every document against its kind's Kubernetes OpenAPI schema (the compiled validators
 *    of `kubernetes-models`): types, required fields, enums, quantities.
 * 2. Unknown fields, which `kubectl apply --validate=strict` refuses but the schema lets through (a
 *    misspelt `livenesProbe` would silently do nothing): found with the TypeScript types of the same
 *    models.
 * 3. Cross-references: env and volume references to Secrets and ConfigMaps (and their keys), Service
 *    selectors and target ports, StatefulSet governing Services, HPA targets, PDB selectors, Ingress
 *    backends, in-cluster URLs in configuration, the kustomization's resource list.
 * 4. This repository's rules: requests and limits on every container, probes on every long-running
 *    container, no `replicas` on a workload an HPA scales, names and labels the API server accepts.
 *
 * `node k8s/validate.ts [dir]` prints a line per resource and exits 1 on any error.
 */
import { CUSTOM_KINDS, OPTIONAL_FILES, dashboardErrors, serviceMonitorErrors } from "./monitoring-checks.ts";
import { SERIES } from "../lib/metrics/series.ts";
import { generatedSecrets } from "./secret-generator.ts";
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { parseAllDocuments } from "yaml";

type Obj = Record<string, any>;

/** One YAML document. */
export interface Manifest {
	/** File name, relative to the validated directory. */
	file: string;
	doc: Obj;
}

export interface ResourceReport {
	/** `Kind namespace/name` */
	id: string;
	file: string;
	errors: string[];
}

export interface ValidationReport {
	resources: ResourceReport[];
	/** Errors that belong to no single resource: unreadable YAML, the kustomization. */
	general: string[];
	errorCount: number;
}

export interface ValidateOptions {
	/** The kustomization's `resources`, checked against `files`. */
	kustomization?: { file: string; resources: string[] };
	/** Every manifest file of the directory. */
	files?: string[];
}

export const K8S_DIR = dirname(fileURLToPath(import.meta.url));

const CLUSTER_SCOPED = new Set([
	"Namespace",
	"PersistentVolume",
	"StorageClass",
	"ClusterRole",
	"ClusterRoleBinding",
	"CustomResourceDefinition",
	"IngressClass",
	"PriorityClass",
	"ValidatingWebhookConfiguration",
	"MutatingWebhookConfiguration"
]);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const PORT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);
const idOf = (doc: Obj): string => {
	const ns = doc.metadata?.namespace;
	return `${doc.kind ?? "?"} ${ns ? `${ns}/` : ""}${doc.metadata?.name ?? "?"}`;
};

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * Every YAML document of every `*.yaml`/`*.yml` file in `dir` but the kustomization, and the
 * Secrets its `secretGenerator` makes (k8s/secret-generator.ts).
 */
export function readManifests(dir: string): { manifests: Manifest[]; files: string[]; errors: string[] } {
	const manifests: Manifest[] = [];
	const errors: string[] = [];
	const files = readdirSync(dir)
		.filter(f => /\.ya?ml$/.test(f) && !/^kustomization\.ya?ml$/.test(f))
		.sort();
	for (const file of files) manifests.push(...parseManifests(file, readFileSync(join(dir, file), "utf8"), errors));
	const kustomizationFile = ["kustomization.yaml", "kustomization.yml"].find(f => existsSync(join(dir, f)));
	if (kustomizationFile) {
		const doc: unknown = parseAllDocuments(readFileSync(join(dir, kustomizationFile), "utf8"))[0]?.toJS();
		manifests.push(...(generatedSecrets(dir, kustomizationFile, doc, errors) as Manifest[]));
	}
	return { manifests, files, errors };
}

/** The documents of one YAML text; YAML errors and documents that are no resource go to `errors`. */
export function parseManifests(file: string, text: string, errors: string[]): Manifest[] {
	const manifests: Manifest[] = [];
	parseAllDocuments(text).forEach((document, index) => {
		if (document.errors.length > 0) {
			for (const err of document.errors) errors.push(`${file} (document ${index + 1}): ${err.message}`);
			return;
		}
		const doc: unknown = document.toJS();
		if (doc === null || doc === undefined) return;
		if (!isObj(doc) || typeof doc.apiVersion !== "string" || typeof doc.kind !== "string") {
			errors.push(`${file} (document ${index + 1}): not a Kubernetes resource (no apiVersion and kind)`);
			return;
		}
		manifests.push({ file, doc });
	});
	return manifests;
}

// ---------------------------------------------------------------------------------------------
// 1. Schema

interface Model {
	validate(): void;
}
type ModelClass = new (data: Obj) => Model;

const models = new Map<string, Promise<ModelClass | null>>();

function loadModel(apiVersion: string, kind: string): Promise<ModelClass | null> {
	if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return Promise.resolve(null);
	const key = `${apiVersion}/${kind}`;
	let model = models.get(key);
	if (!model) {
		model = import(`kubernetes-models/${apiVersion}/${kind}`).then(
			(mod: Record<string, unknown>) => (typeof mod[kind] === "function" ? (mod[kind] as ModelClass) : null),
			() => null
		);
		models.set(key, model);
	}
	return model;
}

/** `/spec/containers/0/ports` → `spec.containers[0].ports` */
function readablePath(pointer: string): string {
	if (!pointer) return "(document)";
	return pointer
		.split("/")
		.slice(1)
		.map(p => p.replace(/~1/g, "/").replace(/~0/g, "~"))
		.reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), "");
}

async function schemaErrors(doc: Obj): Promise<string[]> {
	if (CUSTOM_KINDS.has(`${doc.apiVersion}/${doc.kind}`)) return [];
	const Model = await loadModel(doc.apiVersion, doc.kind);
	if (!Model) return [`unknown apiVersion/kind '${doc.apiVersion}' '${doc.kind}' (not in kubernetes-models)`];
	try {
		new Model(doc).validate();
		return [];
	} catch (err) {
		const details = (err as { errors?: { instancePath?: string; message?: string }[] }).errors;
		if (!Array.isArray(details)) return [`schema: ${(err as Error).message}`];
		const byPath = new Map<string, Set<string>>();
		for (const e of details) {
			const path = readablePath(e.instancePath ?? "");
			if (!byPath.has(path)) byPath.set(path, new Set());
			byPath.get(path)!.add(e.message ?? "is invalid");
		}
		return [...byPath].map(([path, set]) => {
			// "must match exactly one schema in oneOf" only restates the alternatives' own messages.
			const messages = [...set].filter(msg => set.size === 1 || !msg.startsWith("must match exactly one schema"));
			return `schema: ${path}: ${messages.join("; ")}`;
		});
	}
}

// ---------------------------------------------------------------------------------------------
// 2. Unknown fields

/** Walks documents along the TypeScript types of their kinds and reports fields the types lack. */
class FieldChecker {
	private checker: ts.TypeChecker;
	private types = new Map<string, ts.Type>();

	constructor(kinds: { apiVersion: string; kind: string }[]) {
		const file = join(K8S_DIR, "__kubernetes_kinds__.ts");
		const keys = kinds.map(k => `${k.apiVersion}/${k.kind}`);
		const source = kinds
			.map(
				(k, i) =>
					`import type { I${k.kind} as K${i} } from "kubernetes-models/${k.apiVersion}/${k.kind}";\nexport declare const k${i}: K${i};`
			)
			.join("\n");
		const options: ts.CompilerOptions = {
			target: ts.ScriptTarget.ES2023,
			module: ts.ModuleKind.NodeNext,
			moduleResolution: ts.ModuleResolutionKind.NodeNext,
			lib: ["lib.es2023.d.ts"],
			types: [],
			strict: true,
			noEmit: true,
			skipLibCheck: true
		};
		const host = ts.createCompilerHost(options);
		const { getSourceFile, fileExists, readFile } = host;
		host.getSourceFile = (name, version, ...rest) =>
			name === file ? ts.createSourceFile(name, source, version) : getSourceFile.call(host, name, version, ...rest);
		host.fileExists = name => name === file || fileExists.call(host, name);
		host.readFile = name => (name === file ? source : readFile.call(host, name));
		const program = ts.createProgram([file], options, host);
		this.checker = program.getTypeChecker();
		const sourceFile = program.getSourceFile(file)!;
		for (const statement of sourceFile.statements) {
			if (!ts.isVariableStatement(statement)) continue;
			const decl = statement.declarationList.declarations[0];
			const index = Number(decl.name.getText(sourceFile).slice(1));
			this.types.set(keys[index], this.checker.getTypeAtLocation(decl.name));
		}
	}

	unknownFields(doc: Obj): string[] {
		const type = this.types.get(`${doc.apiVersion}/${doc.kind}`);
		if (!type || type.flags & ts.TypeFlags.Any) return [];
		const found: string[] = [];
		this.walk(doc, type, "", found);
		return found;
	}

	/** The one object type of `type` (optional and nullable parts removed), if it has exactly one. */
	private objectType(type: ts.Type): ts.Type | null {
		if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return null;
		const parts = (type.isUnion() ? type.types : [type]).filter(t => t.flags & ts.TypeFlags.Object);
		return parts.length === 1 ? parts[0] : null;
	}

	private walk(value: unknown, declared: ts.Type, path: string, found: string[]): void {
		if (typeof value !== "object" || value === null) return;
		const type = this.objectType(this.checker.getNonNullableType(declared));
		if (!type) return;
		if (Array.isArray(value)) {
			const element = this.checker.isArrayType(type)
				? this.checker.getTypeArguments(type as ts.TypeReference)[0]
				: this.checker.getIndexTypeOfType(type, ts.IndexKind.Number);
			if (element) value.forEach((item, i) => this.walk(item, element, `${path}[${i}]`, found));
			return;
		}
		if (this.checker.isArrayType(type)) return; // the schema check reports an object for an array
		const index = this.checker.getIndexTypeOfType(type, ts.IndexKind.String);
		for (const [key, child] of Object.entries(value)) {
			const childPath = path ? `${path}.${key}` : key;
			const property = this.checker.getPropertyOfType(type, key);
			if (property) this.walk(child, this.checker.getTypeOfSymbol(property), childPath, found);
			else if (index) this.walk(child, index, childPath, found);
			else found.push(`unknown field: ${childPath}`);
		}
	}
}

// ---------------------------------------------------------------------------------------------
// 3 and 4. Cross-references and rules

interface Pods {
	manifest: Manifest;
	labels: Record<string, string>;
	spec: Obj;
}

function podsOf(doc: Obj): { labels: Record<string, string>; spec: Obj } | null {
	const template =
		doc.kind === "CronJob"
			? doc.spec?.jobTemplate?.spec?.template
			: ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"].includes(doc.kind)
				? doc.spec?.template
				: doc.kind === "Pod"
					? doc
					: null;
	if (!isObj(template) || !isObj(template.spec)) return null;
	return { labels: isObj(template.metadata?.labels) ? template.metadata.labels : {}, spec: template.spec };
}

/** A LabelSelector (`matchLabels`, `matchExpressions`) or a Service's plain map. */
function selects(selector: Obj, labels: Record<string, string>, plain: boolean): boolean {
	const matchLabels: Obj = plain ? selector : (selector.matchLabels ?? {});
	for (const [k, v] of Object.entries(matchLabels)) if (labels[k] !== v) return false;
	if (plain) return true;
	for (const e of list(selector.matchExpressions)) {
		const has = Object.hasOwn(labels, e.key);
		const values: string[] = Array.isArray(e.values) ? e.values : [];
		const ok =
			e.operator === "In"
				? has && values.includes(labels[e.key])
				: e.operator === "NotIn"
					? !has || !values.includes(labels[e.key])
					: e.operator === "Exists"
						? has
						: e.operator === "DoesNotExist"
							? !has
							: false;
		if (!ok) return false;
	}
	return true;
}

const isEmptySelector = (selector: Obj | undefined, plain: boolean): boolean =>
	!selector ||
	(plain
		? Object.keys(selector).length === 0
		: Object.keys(selector.matchLabels ?? {}).length === 0 && list(selector.matchExpressions).length === 0);

function decodedData(secretOrConfigMap: Obj): Record<string, string> {
	const values: Record<string, string> = {};
	const base64 = secretOrConfigMap.kind === "Secret";
	for (const [k, v] of Object.entries(secretOrConfigMap.data ?? {}))
		values[k] = base64 ? Buffer.from(String(v), "base64").toString("utf8") : String(v);
	for (const [k, v] of Object.entries(secretOrConfigMap.binaryData ?? {})) values[k] = String(v);
	for (const [k, v] of Object.entries(secretOrConfigMap.stringData ?? {})) values[k] = String(v);
	return values;
}

class Index {
	private byKey = new Map<string, Manifest>();
	readonly pods: Pods[] = [];
	readonly manifests: Manifest[];

	constructor(manifests: Manifest[]) {
		this.manifests = manifests;
		for (const m of manifests) {
			const key = this.key(m.doc.kind, m.doc.metadata?.namespace, m.doc.metadata?.name);
			if (!this.byKey.has(key)) this.byKey.set(key, m);
			const pods = podsOf(m.doc);
			if (pods) this.pods.push({ manifest: m, ...pods });
		}
	}

	private key(kind: string, namespace: string | undefined, name: string | undefined): string {
		return `${kind}/${CLUSTER_SCOPED.has(kind) ? "" : (namespace ?? "")}/${name ?? ""}`;
	}

	get(kind: string, namespace: string | undefined, name: string | undefined): Manifest | undefined {
		return this.byKey.get(this.key(kind, namespace, name));
	}

	all(kind: string): Manifest[] {
		return this.manifests.filter(m => m.doc.kind === kind);
	}

	podsSelectedBy(namespace: string | undefined, selector: Obj, plain: boolean): Pods[] {
		return this.pods.filter(p => p.manifest.doc.metadata?.namespace === namespace && selects(selector, p.labels, plain));
	}

	/** The values of a Secret or ConfigMap, or null when it is not among the manifests. */
	data(kind: "Secret" | "ConfigMap", namespace: string | undefined, name: string): Record<string, string> | null {
		const m = this.get(kind, namespace, name);
		return m ? decodedData(m.doc) : null;
	}
}

function checkMetadata(m: Manifest, index: Index, errors: string[]): void {
	const { kind, metadata } = m.doc;
	const name: unknown = metadata?.name;
	if (typeof name !== "string" || name === "") {
		errors.push("metadata.name is missing");
	} else {
		const dns1035 = kind === "Service";
		const label = dns1035 || kind === "Namespace";
		const pattern = dns1035 ? DNS_1035_LABEL : label ? DNS_LABEL : DNS_SUBDOMAIN;
		if (!pattern.test(name) || name.length > (label ? 63 : 253))
			errors.push(
				`metadata.name '${name}' is not a valid ${dns1035 ? "DNS-1035 label" : label ? "DNS label" : "DNS subdomain"}`
			);
	}
	if (!CLUSTER_SCOPED.has(kind)) {
		const namespaces = index.all("Namespace").map(n => n.doc.metadata?.name);
		if (!metadata?.namespace) errors.push("metadata.namespace is missing (kubectl apply -f would use the current namespace)");
		else if (namespaces.length > 0 && !namespaces.includes(metadata.namespace))
			errors.push(
				`metadata.namespace '${metadata.namespace}' is none of the Namespaces defined here (${namespaces.join(", ")})`
			);
	}
	checkLabels(metadata?.labels, "metadata.labels", errors);
	const pods = podsOf(m.doc);
	if (pods) checkLabels(pods.labels, "pod template labels", errors);
}

function checkLabels(labels: unknown, where: string, errors: string[]): void {
	if (!isObj(labels)) return;
	for (const [key, value] of Object.entries(labels)) {
		const slash = key.lastIndexOf("/");
		const [prefix, name] = slash >= 0 ? [key.slice(0, slash), key.slice(slash + 1)] : ["", key];
		if ((slash >= 0 && (!DNS_SUBDOMAIN.test(prefix) || prefix.length > 253)) || !LABEL_NAME.test(name) || name.length > 63)
			errors.push(`${where}: '${key}' is not a valid label key`);
		if (typeof value !== "string" || (value !== "" && (!LABEL_NAME.test(value) || value.length > 63)))
			errors.push(`${where}: value '${String(value)}' of '${key}' is not a valid label value`);
	}
}

function checkWorkload(m: Manifest, index: Index, errors: string[]): void {
	const doc = m.doc;
	const pods = podsOf(doc);
	if (!pods || doc.kind === "Pod") return;
	const ns: string | undefined = doc.metadata?.namespace;
	const { spec } = pods;
	const where = (c: Obj, init: boolean) => `${init ? "initContainer" : "container"} '${c.name}'`;

	if (["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"].includes(doc.kind)) {
		const selector = doc.spec?.selector;
		if (isEmptySelector(selector, false)) errors.push("spec.selector selects nothing: it needs matchLabels");
		else if (!selects(selector, pods.labels, false)) errors.push("spec.selector does not match the pod template's labels");
	}

	const volumes = new Set(list(spec.volumes).map(v => v.name));
	if (doc.kind === "StatefulSet") for (const t of list(doc.spec?.volumeClaimTemplates)) volumes.add(t.metadata?.name);

	for (const v of list(spec.volumes)) {
		const refs: [kind: "Secret" | "ConfigMap", name: string, optional: boolean][] = [];
		if (v.secret) refs.push(["Secret", v.secret.secretName, Boolean(v.secret.optional)]);
		if (v.configMap) refs.push(["ConfigMap", v.configMap.name, Boolean(v.configMap.optional)]);
		for (const s of list(v.projected?.sources)) {
			if (s.secret) refs.push(["Secret", s.secret.name, Boolean(s.secret.optional)]);
			if (s.configMap) refs.push(["ConfigMap", s.configMap.name, Boolean(s.configMap.optional)]);
		}
		for (const [kind, name, optional] of refs)
			if (!optional && !index.get(kind, ns, name)) errors.push(`volume '${v.name}': ${kind} '${name}' is not defined`);
		if (v.persistentVolumeClaim && !index.get("PersistentVolumeClaim", ns, v.persistentVolumeClaim.claimName))
			errors.push(`volume '${v.name}': PersistentVolumeClaim '${v.persistentVolumeClaim.claimName}' is not defined`);
	}

	const containers = [
		...list(spec.initContainers).map(c => [c, true] as const),
		...list(spec.containers).map(c => [c, false] as const)
	];
	const containerNames = new Set<string>();
	for (const [c, init] of containers) {
		if (typeof c.name === "string" && !DNS_LABEL.test(c.name))
			errors.push(`${where(c, init)}: name is not a valid DNS label`);
		if (containerNames.has(c.name)) errors.push(`${where(c, init)}: the name is used twice`);
		containerNames.add(c.name);

		const portNames = new Set<string>();
		for (const p of list(c.ports)) {
			if (p.name === undefined) continue;
			if (!PORT_NAME.test(p.name) || p.name.length > 15 || !/[a-z]/.test(p.name))
				errors.push(`${where(c, init)}: port name '${p.name}' is not valid (at most 15 lowercase letters, digits, '-')`);
			if (portNames.has(p.name)) errors.push(`${where(c, init)}: port name '${p.name}' is used twice`);
			portNames.add(p.name);
		}

		const envNames = new Set<string>();
		for (const e of list(c.env)) {
			if (!ENV_NAME.test(e.name)) errors.push(`${where(c, init)}: '${e.name}' is not a valid environment variable name`);
			if (envNames.has(e.name)) errors.push(`${where(c, init)}: env '${e.name}' is set twice`);
			envNames.add(e.name);
			for (const [kind, ref] of [
				["Secret", e.valueFrom?.secretKeyRef],
				["ConfigMap", e.valueFrom?.configMapKeyRef]
			] as const) {
				if (!isObj(ref) || ref.optional) continue;
				const data = index.data(kind, ns, ref.name);
				if (!data) errors.push(`${where(c, init)}: env '${e.name}' names ${kind} '${ref.name}', which is not defined`);
				else if (!Object.hasOwn(data, ref.key))
					errors.push(`${where(c, init)}: env '${e.name}' names key '${ref.key}', which ${kind} '${ref.name}' lacks`);
			}
		}
		for (const f of list(c.envFrom)) {
			for (const [kind, ref] of [
				["Secret", f.secretRef],
				["ConfigMap", f.configMapRef]
			] as const)
				if (isObj(ref) && !ref.optional && !index.get(kind, ns, ref.name))
					errors.push(`${where(c, init)}: envFrom names ${kind} '${ref.name}', which is not defined`);
		}

		for (const mount of list(c.volumeMounts))
			if (!volumes.has(mount.name)) errors.push(`${where(c, init)}: volumeMount '${mount.name}' names no volume`);

		const handlers: [string, Obj | undefined][] = [
			["startupProbe", c.startupProbe],
			["livenessProbe", c.livenessProbe],
			["readinessProbe", c.readinessProbe],
			["lifecycle.postStart", c.lifecycle?.postStart],
			["lifecycle.preStop", c.lifecycle?.preStop]
		];
		for (const [name, handler] of handlers) {
			const port = handler?.httpGet?.port ?? handler?.tcpSocket?.port ?? handler?.grpc?.port;
			if (typeof port === "string" && !portNames.has(port))
				errors.push(`${where(c, init)}: ${name} uses port '${port}', which the container does not name`);
		}

		// Rules: requests and a memory limit everywhere; probes on long-running containers.
		const missing = [
			c.resources?.requests?.cpu === undefined && "requests.cpu",
			c.resources?.requests?.memory === undefined && "requests.memory",
			c.resources?.limits?.memory === undefined && "limits.memory"
		].filter(Boolean);
		if (missing.length > 0) errors.push(`${where(c, init)}: resources lack ${missing.join(", ")}`);
		if (!init && ["Deployment", "StatefulSet", "DaemonSet"].includes(doc.kind)) {
			if (!c.livenessProbe) errors.push(`${where(c, init)}: no livenessProbe`);
			if (!c.readinessProbe) errors.push(`${where(c, init)}: no readinessProbe`);
		}
	}

	if (doc.kind === "StatefulSet") {
		const service = index.get("Service", ns, doc.spec?.serviceName);
		if (!doc.spec?.serviceName) errors.push("spec.serviceName is missing");
		else if (!service) errors.push(`spec.serviceName names Service '${doc.spec.serviceName}', which is not defined`);
		else {
			if (service.doc.spec?.clusterIP !== "None")
				errors.push(`spec.serviceName: Service '${doc.spec.serviceName}' is not headless (clusterIP: None)`);
			if (!isObj(service.doc.spec?.selector) || !selects(service.doc.spec.selector, pods.labels, true))
				errors.push(`spec.serviceName: Service '${doc.spec.serviceName}' does not select these pods`);
		}
	}

	const scaledBy = index
		.all("HorizontalPodAutoscaler")
		.find(
			h =>
				h.doc.metadata?.namespace === ns &&
				h.doc.spec?.scaleTargetRef?.kind === doc.kind &&
				h.doc.spec?.scaleTargetRef?.name === doc.metadata?.name
		);
	if (scaledBy && doc.spec?.replicas !== undefined)
		errors.push(
			`spec.replicas is set although HorizontalPodAutoscaler '${scaledBy.doc.metadata.name}' scales it: every apply would reset the count`
		);
}

function checkService(m: Manifest, index: Index, errors: string[]): void {
	const { spec, metadata } = m.doc;
	if (spec?.type === "ExternalName") return;
	if (!isObj(spec?.selector) || isEmptySelector(spec.selector, true)) {
		errors.push("spec.selector is missing: the Service selects no pods");
		return;
	}
	const pods = index.podsSelectedBy(metadata?.namespace, spec.selector, true);
	if (pods.length === 0) {
		errors.push(`spec.selector ${JSON.stringify(spec.selector)} matches no pod template here`);
		return;
	}
	const containerPorts = pods.flatMap(p => list(p.spec.containers).flatMap(c => list(c.ports)));
	for (const port of list(spec.ports)) {
		const target = port.targetPort ?? port.port;
		const found =
			typeof target === "string"
				? containerPorts.some(p => p.name === target)
				: containerPorts.some(p => p.containerPort === target);
		if (!found)
			errors.push(
				`port '${port.name ?? port.port}': targetPort ${JSON.stringify(target)} is no container port of the selected pods`
			);
	}
}

function checkAutoscaler(m: Manifest, index: Index, errors: string[]): void {
	const { spec, metadata } = m.doc;
	const ref = spec?.scaleTargetRef;
	if (!isObj(ref)) return;
	const target = index.get(ref.kind, metadata?.namespace, ref.name);
	if (!target) {
		errors.push(`scaleTargetRef names ${ref.kind} '${ref.name}', which is not defined`);
		return;
	}
	if (ref.apiVersion && ref.apiVersion !== target.doc.apiVersion)
		errors.push(
			`scaleTargetRef.apiVersion '${ref.apiVersion}' is not that of ${ref.kind} '${ref.name}' (${target.doc.apiVersion})`
		);
	if (typeof spec.minReplicas === "number" && typeof spec.maxReplicas === "number" && spec.minReplicas > spec.maxReplicas)
		errors.push(`minReplicas ${spec.minReplicas} exceeds maxReplicas ${spec.maxReplicas}`);
	const pods = podsOf(target.doc);
	for (const metric of list(spec.metrics)) {
		const resource = metric.type === "Resource" ? metric.resource : null;
		if (!resource || resource.target?.type !== "Utilization" || !pods) continue;
		for (const c of list(pods.spec.containers))
			if (c.resources?.requests?.[resource.name] === undefined)
				errors.push(
					`${resource.name} utilization needs requests.${resource.name} on container '${c.name}' of ${ref.name}`
				);
	}
}

function checkDisruptionBudget(m: Manifest, index: Index, errors: string[]): void {
	const { spec, metadata } = m.doc;
	if (spec?.minAvailable !== undefined && spec?.maxUnavailable !== undefined)
		errors.push("minAvailable and maxUnavailable are both set: set one");
	if (!isObj(spec?.selector) || isEmptySelector(spec.selector, false)) errors.push("spec.selector is missing");
	else if (index.podsSelectedBy(metadata?.namespace, spec.selector, false).length === 0)
		errors.push("spec.selector matches no pod template here");
}

function checkIngress(m: Manifest, index: Index, errors: string[]): void {
	const { spec, metadata } = m.doc;
	const backends: [string, Obj][] = [];
	if (isObj(spec?.defaultBackend?.service)) backends.push(["defaultBackend", spec.defaultBackend.service]);
	for (const rule of list(spec?.rules))
		for (const path of list(rule.http?.paths))
			if (isObj(path.backend?.service)) backends.push([`${rule.host ?? "*"}${path.path ?? ""}`, path.backend.service]);
	for (const [where, backend] of backends) {
		const service = index.get("Service", metadata?.namespace, backend.name);
		if (!service) {
			errors.push(`${where}: backend Service '${backend.name}' is not defined`);
			continue;
		}
		const ports = list(service.doc.spec?.ports);
		const { name, number } = backend.port ?? {};
		const found = name !== undefined ? ports.some(p => p.name === name) : ports.some(p => p.port === number);
		if (!found) errors.push(`${where}: Service '${backend.name}' has no port ${JSON.stringify(name ?? number)}`);
	}
}

/** nats://, mysql://, mariadb:// and redis:// URLs to a short host name must name a Service here. */
function checkInClusterUrls(m: Manifest, index: Index, errors: string[]): void {
	const defaults: Record<string, number> = { "nats:": 4222, "mysql:": 3306, "mariadb:": 3306, "redis:": 6379 };
	for (const [key, value] of Object.entries(decodedData(m.doc))) {
		let url: URL;
		try {
			url = new URL(value);
		} catch {
			continue;
		}
		if (!(url.protocol in defaults) || !url.hostname || url.hostname.includes(".")) continue;
		const service = index.get("Service", m.doc.metadata?.namespace, url.hostname);
		if (!service) continue; // bring-your-own: a name resolved by the cluster's DNS some other way
		const port = Number(url.port) || defaults[url.protocol];
		if (!list(service.doc.spec?.ports).some(p => p.port === port))
			errors.push(`${key}: Service '${url.hostname}' has no port ${port}`);
	}
}

/** The starter MySQL's user, password and database must be those of DB_URI. */
function checkDatabaseCredentials(m: Manifest, index: Index, errors: string[]): void {
	const data = decodedData(m.doc);
	if (!data.DB_URI) return;
	let url: URL;
	try {
		url = new URL(data.DB_URI);
	} catch {
		errors.push("DB_URI is not a URL");
		return;
	}
	const ns = m.doc.metadata?.namespace;
	const mysql = index
		.all("StatefulSet")
		.find(
			s =>
				s.doc.metadata?.namespace === ns &&
				(s.doc.metadata?.name === url.hostname || s.doc.spec?.serviceName === url.hostname)
		);
	const container = mysql && list(podsOf(mysql.doc)?.spec.containers).find(c => list(c.env).some(e => e.name === "MYSQL_USER"));
	if (!container) return;
	const env = (name: string): string | undefined => {
		const e = list(container.env).find(v => v.name === name);
		if (!e) return undefined;
		if (e.value !== undefined) return String(e.value);
		const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
		return ref ? index.data(e.valueFrom.secretKeyRef ? "Secret" : "ConfigMap", ns, ref.name)?.[ref.key] : undefined;
	};
	const expected: [string, string, string | undefined][] = [
		["user", decodeURIComponent(url.username), env("MYSQL_USER")],
		["password", decodeURIComponent(url.password), env("MYSQL_PASSWORD")],
		["database", decodeURIComponent(url.pathname.slice(1)), env("MYSQL_DATABASE")]
	];
	for (const [what, inUri, inServer] of expected)
		if (inServer !== undefined && inUri !== inServer)
			errors.push(
				`DB_URI's ${what} is not the one StatefulSet '${mysql!.doc.metadata.name}' creates (MYSQL_${what.toUpperCase()})`
			);
}

// ---------------------------------------------------------------------------------------------

/** Validates documents already parsed. */
export async function validateManifests(manifests: Manifest[], options: ValidateOptions = {}): Promise<ValidationReport> {
	const index = new Index(manifests);
	const kinds = [...new Map(manifests.map(m => [`${m.doc.apiVersion}/${m.doc.kind}`, m.doc])).values()];
	const known = (await Promise.all(kinds.map(async k => ((await loadModel(k.apiVersion, k.kind)) ? k : null)))).filter(
		k => k !== null
	);
	const fields = new FieldChecker(known.map(k => ({ apiVersion: k.apiVersion, kind: k.kind })));

	const seen = new Set<string>();
	const resources: ResourceReport[] = [];
	for (const m of manifests) {
		const id = idOf(m.doc);
		const errors = await schemaErrors(m.doc);
		errors.push(...fields.unknownFields(m.doc));
		if (seen.has(id)) errors.push("defined twice");
		seen.add(id);
		checkMetadata(m, index, errors);
		checkWorkload(m, index, errors);
		if (m.doc.kind === "Service") checkService(m, index, errors);
		if (m.doc.kind === "HorizontalPodAutoscaler") checkAutoscaler(m, index, errors);
		if (m.doc.kind === "PodDisruptionBudget") checkDisruptionBudget(m, index, errors);
		if (m.doc.kind === "Ingress") checkIngress(m, index, errors);
		if (m.doc.kind === "ConfigMap" || m.doc.kind === "Secret") checkInClusterUrls(m, index, errors);
		if (m.doc.kind === "Secret") checkDatabaseCredentials(m, index, errors);
		if (m.doc.kind === "ServiceMonitor")
			errors.push(
				...serviceMonitorErrors(
					m.doc,
					index.all("Service").map(s => s.doc)
				)
			);
		resources.push({ id, file: m.file, errors });
	}

	const general: string[] = [];
	if (options.kustomization && options.files) {
		const { file, resources: listed } = options.kustomization;
		for (const f of options.files)
			if (!listed.includes(f) && !OPTIONAL_FILES.has(f)) general.push(`${file}: resources does not list ${f}`);
		for (const f of listed) if (!options.files.includes(f)) general.push(`${file}: resources lists ${f}, which is not here`);
	}
	const errorCount = general.length + resources.reduce((n, r) => n + r.errors.length, 0);
	return { resources, general, errorCount };
}

/** Reads and validates every manifest of `dir` (default: this directory). */
export async function validateDirectory(dir: string = K8S_DIR): Promise<ValidationReport> {
	const { manifests, files, errors } = readManifests(dir);
	let kustomization: ValidateOptions["kustomization"];
	const kustomizationFile = ["kustomization.yaml", "kustomization.yml"].find(f => existsSync(join(dir, f)));
	if (kustomizationFile) {
		const doc: unknown = parseAllDocuments(readFileSync(join(dir, kustomizationFile), "utf8"))[0]?.toJS();
		const listed: unknown = isObj(doc) ? doc.resources : undefined;
		kustomization = { file: kustomizationFile, resources: Array.isArray(listed) ? listed.map(String) : [] };
	}
	const report = await validateManifests(manifests, { kustomization, files });
	const dashboard = join(dir, "grafana-dashboard.json");
	if (existsSync(dashboard)) {
		const known = new Set([...Object.keys(SERIES), "tern_alerts_firing"]);
		errors.push(...dashboardErrors(readFileSync(dashboard, "utf8"), known).map(e => `grafana-dashboard.json: ${e}`));
	}
	report.general.unshift(...errors);
	report.errorCount += errors.length;
	return report;
}

/** A line per resource, its errors beneath, and a summary. */
export function formatReport(report: ValidationReport): string[] {
	const lines: string[] = [];
	for (const r of report.resources) {
		lines.push(`${r.errors.length === 0 ? "ok  " : "FAIL"}  ${r.id}  (${r.file})`);
		for (const e of r.errors) lines.push(`        - ${e}`);
	}
	for (const e of report.general) lines.push(`FAIL  ${e}`);
	const files = new Set(report.resources.map(r => r.file)).size;
	lines.push(
		`${report.resources.length} resources in ${files} files, ${report.errorCount} error${report.errorCount === 1 ? "" : "s"}`
	);
	return lines;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
	const dir = resolve(process.argv[2] ?? K8S_DIR);
	const report = await validateDirectory(dir);
	console.log(`Validating ${basename(dir)}/ against the Kubernetes schemas (kubernetes-models) and cross-references`);
	for (const line of formatReport(report)) console.log(line);
	process.exitCode = report.errorCount > 0 ? 1 : 0;
}
