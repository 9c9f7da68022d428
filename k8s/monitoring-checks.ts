/**
 * Checks for what kubernetes-models has no schema of: the Prometheus Operator's ServiceMonitor
 * (a CRD) and the Grafana dashboard (JSON, no resource). validate.ts calls them; they take plain
 * documents, so that this module needs nothing of it.
 */
type Obj = Record<string, any>;

/** Kinds of CRDs checked here rather than against a schema. */
export const CUSTOM_KINDS: ReadonlySet<string> = new Set(["monitoring.coreos.com/v1/ServiceMonitor"]);

/** Files applied on their own, where the cluster has what they need (see their comments), not by kustomize. */
export const OPTIONAL_FILES: ReadonlySet<string> = new Set(["servicemonitor.yaml", "prometheus-scrape.yaml"]);

const SERVICE_MONITOR_FIELDS = new Set(["selector", "endpoints", "namespaceSelector", "jobLabel", "podTargetLabels"]);
const ENDPOINT_FIELDS = new Set(["port", "path", "interval", "scrapeTimeout", "honorLabels", "scheme", "relabelings"]);

/** A ServiceMonitor: known fields, a selector that picks a Service here, endpoints naming its ports. */
export function serviceMonitorErrors(doc: Obj, services: Obj[]): string[] {
	const errors: string[] = [];
	const spec: Obj = doc.spec ?? {};
	for (const key of Object.keys(spec)) if (!SERVICE_MONITOR_FIELDS.has(key)) errors.push(`spec.${key}: unknown field`);
	const match: Obj = spec.selector?.matchLabels ?? {};
	if (Object.keys(match).length === 0) errors.push("spec.selector.matchLabels is missing: it would select every Service");
	const namespace = doc.metadata?.namespace;
	const selected = services.filter(
		s => s.metadata?.namespace === namespace && Object.entries(match).every(([k, v]) => (s.metadata?.labels ?? {})[k] === v)
	);
	if (selected.length === 0) errors.push(`spec.selector ${JSON.stringify(match)} matches no Service here`);
	const ports = new Set(selected.flatMap(s => (s.spec?.ports ?? []).map((p: Obj) => p.name)));
	const endpoints: Obj[] = Array.isArray(spec.endpoints) ? spec.endpoints : [];
	if (endpoints.length === 0) errors.push("spec.endpoints is empty: nothing is scraped");
	endpoints.forEach((endpoint, i) => {
		for (const key of Object.keys(endpoint))
			if (!ENDPOINT_FIELDS.has(key)) errors.push(`spec.endpoints[${i}].${key}: unknown field`);
		if (selected.length > 0 && !ports.has(endpoint.port))
			errors.push(`spec.endpoints[${i}].port '${endpoint.port}' is no named port of the selected Services`);
	});
	return errors;
}

/**
 * A Grafana dashboard: JSON with a title and panels, each with a title and at least one query,
 * and every `tern_` series it queries among `known` (plus Prometheus's _bucket/_sum/_count).
 */
export function dashboardErrors(text: string, known: ReadonlySet<string>): string[] {
	let doc: Obj;
	try {
		doc = JSON.parse(text) as Obj;
	} catch (err) {
		return [`not JSON: ${(err as Error).message}`];
	}
	const errors: string[] = [];
	if (typeof doc.title !== "string") errors.push("title is missing");
	const panels: Obj[] = Array.isArray(doc.panels) ? doc.panels : [];
	if (panels.length === 0) errors.push("no panels");
	panels.forEach((panel, i) => {
		if (panel.type === "row") return;
		const what = `panel ${i} '${panel.title ?? ""}'`;
		if (typeof panel.title !== "string" || panel.title === "") errors.push(`panel ${i}: title is missing`);
		const targets: Obj[] = Array.isArray(panel.targets) ? panel.targets : [];
		if (!targets.some(t => typeof t.expr === "string" && t.expr.trim() !== "")) errors.push(`${what}: no query`);
		for (const t of targets)
			for (const [name] of String(t.expr ?? "").matchAll(/\btern_[a-z_]+/g)) {
				const base = name.replace(/_(bucket|sum|count)$/, "");
				if (!known.has(name) && !known.has(base)) errors.push(`${what}: queries '${name}', which Tern does not export`);
			}
	});
	return errors;
}
