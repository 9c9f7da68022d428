import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
	K8S_DIR,
	formatReport,
	parseManifests,
	readManifests,
	validateDirectory,
	validateManifests,
	type Manifest,
	type ValidationReport
} from "../../k8s/validate.ts";
import { dashboardErrors, serviceMonitorErrors } from "../../k8s/monitoring-checks.ts";

const SERVICES = ["api", "gateway", "dispatcher", "scheduler", "cache", "monitor", "alert"];

/** The real manifests, changed by `change`, validated in memory. */
async function validateChanged(
	change: (find: (kind: string, name: string) => Record<string, any>) => void
): Promise<ValidationReport> {
	const manifests: Manifest[] = structuredClone(readManifests(K8S_DIR).manifests);
	change((kind, name) => {
		const found = manifests.find(m => m.doc.kind === kind && m.doc.metadata.name === name);
		assert.ok(found, `${kind} ${name} in k8s/`);
		return found.doc;
	});
	return validateManifests(manifests);
}

function errorsOf(report: ValidationReport, id: string): string[] {
	return report.resources.filter(r => r.id === id).flatMap(r => r.errors);
}

describe("k8s/ manifests", () => {
	it("are valid: schema, unknown fields, cross-references, kustomization", async () => {
		const report = await validateDirectory();
		assert.equal(report.errorCount, 0, formatReport(report).join("\n"));
		const ids = report.resources.map(r => r.id);
		for (const service of SERVICES) assert.ok(ids.includes(`Deployment tern/tern-${service}`), `Deployment for ${service}`);
		for (const service of ["gateway", "dispatcher"]) assert.ok(ids.includes(`HorizontalPodAutoscaler tern/tern-${service}`));
		for (const id of [
			"StatefulSet tern/nats",
			"StatefulSet tern/mysql",
			"Secret tern/tern-secrets",
			"ConfigMap tern/tern-config"
		])
			assert.ok(ids.includes(id), id);
	});

	it("probe every Tern node on its health endpoints", () => {
		const deployments = readManifests(K8S_DIR).manifests.filter(m => m.doc.kind === "Deployment");
		for (const { doc } of deployments) {
			const container = doc.spec.template.spec.containers[0];
			assert.equal(container.livenessProbe.httpGet.path, "/healthz/live", doc.metadata.name);
			assert.equal(container.readinessProbe.httpGet.path, "/healthz/ready", doc.metadata.name);
			const env = Object.fromEntries(container.env.map((e: { name: string }) => [e.name, e]));
			assert.equal(env.HEALTH_PORT.valueFrom.configMapKeyRef.key, "HEALTH_PORT");
			assert.equal(env.NODE_ID.valueFrom.fieldRef.fieldPath, "metadata.name");
			assert.ok(env.SERVICES.value, doc.metadata.name);
		}
	});

	it("report a schema error: replicas 'two'", async () => {
		const report = await validateChanged(find => {
			find("Deployment", "tern-api").spec.replicas = "two";
		});
		assert.deepEqual(errorsOf(report, "Deployment tern/tern-api"), ["schema: spec.replicas: must be integer"]);
		assert.equal(report.errorCount, 1);
	});

	it("report a misspelt field the schema alone lets through", async () => {
		const report = await validateChanged(find => {
			const container = find("Deployment", "tern-cache").spec.template.spec.containers[0];
			container.readinesProbe = container.readinessProbe;
			delete container.readinessProbe;
		});
		const errors = errorsOf(report, "Deployment tern/tern-cache");
		assert.ok(errors.includes("unknown field: spec.template.spec.containers[0].readinesProbe"), errors.join("\n"));
		assert.ok(errors.includes("container 'tern': no readinessProbe"), errors.join("\n"));
	});

	it("report a Service that selects no pods", async () => {
		const report = await validateChanged(find => {
			find("Service", "tern-gateway").spec.selector["app.kubernetes.io/component"] = "gatway";
		});
		const errors = errorsOf(report, "Service tern/tern-gateway");
		assert.equal(errors.length, 1);
		assert.match(errors[0], /matches no pod template/);
	});

	it("report dangling references: Secret key, HPA target, Ingress backend port", async () => {
		const report = await validateChanged(find => {
			find("Deployment", "tern-dispatcher").spec.template.spec.containers[0].env.find(
				(e: { name: string }) => e.name === "JWT_SECRET"
			).valueFrom.secretKeyRef.key = "JWT";
			find("HorizontalPodAutoscaler", "tern-gateway").spec.scaleTargetRef.name = "gateway";
			find("Ingress", "tern-gateway").spec.rules[0].http.paths[0].backend.service.port = { number: 3000 };
		});
		assert.deepEqual(errorsOf(report, "Deployment tern/tern-dispatcher"), [
			"container 'tern': env 'JWT_SECRET' names key 'JWT', which Secret 'tern-secrets' lacks"
		]);
		assert.deepEqual(errorsOf(report, "HorizontalPodAutoscaler tern/tern-gateway"), [
			"scaleTargetRef names Deployment 'gateway', which is not defined"
		]);
		assert.deepEqual(errorsOf(report, "Ingress tern/tern-gateway"), [
			"tern.example.com/socket.io: Service 'tern-gateway' has no port 3000"
		]);
	});

	it("report replicas on a Deployment an HPA scales, and a DB_URI the starter MySQL would refuse", async () => {
		const report = await validateChanged(find => {
			find("Deployment", "tern-gateway").spec.replicas = 3;
			const secret = find("Secret", "tern-secrets");
			secret.stringData.DB_URI = secret.stringData.DB_URI.replace("mysql://tern:", "mysql://root:");
		});
		assert.match(
			errorsOf(report, "Deployment tern/tern-gateway").join("\n"),
			/spec\.replicas is set although HorizontalPodAutoscaler/
		);
		assert.deepEqual(errorsOf(report, "Secret tern/tern-secrets"), [
			"DB_URI's user is not the one StatefulSet 'mysql' creates (MYSQL_USER)"
		]);
	});

	it("report YAML that does not parse or is no resource", () => {
		const errors: string[] = [];
		const manifests = parseManifests(
			"bad.yaml",
			"apiVersion: v1\nkind: ConfigMap\n---\nfoo: [1, 2\n---\njust: data\n",
			errors
		);
		assert.equal(manifests.length, 1);
		assert.equal(errors.length >= 2, true, errors.join("\n"));
		assert.match(errors.join("\n"), /document 2/);
		assert.match(errors.join("\n"), /document 3\): not a Kubernetes resource/);
	});

	it("report a ServiceMonitor whose endpoint names no port of its Service", async () => {
		const { manifests } = readManifests(K8S_DIR);
		const services = manifests.filter(m => m.doc.kind === "Service").map(m => m.doc);
		const monitor = structuredClone(manifests.find(m => m.doc.kind === "ServiceMonitor")!.doc);
		assert.deepEqual(serviceMonitorErrors(monitor, services), []);
		monitor.spec.endpoints[0].port = "metrics";
		assert.deepEqual(serviceMonitorErrors(monitor, services), [
			"spec.endpoints[0].port 'metrics' is no named port of the selected Services"
		]);
	});

	it("report a dashboard panel that queries a series Tern does not export", () => {
		const known = new Set(["tern_tasks_total", "tern_task_phase_seconds"]);
		const panel = (expr: string) => ({ title: "p", targets: [{ expr }] });
		const text = (exprs: string[]) => JSON.stringify({ title: "t", panels: exprs.map(panel) });
		assert.deepEqual(dashboardErrors(text(["rate(tern_tasks_total[1m])", "tern_task_phase_seconds_bucket"]), known), []);
		assert.deepEqual(dashboardErrors(text(["tern_task_total"]), known), [
			"panel 0 'p': queries 'tern_task_total', which Tern does not export"
		]);
		assert.match(dashboardErrors("{", known)[0], /not JSON/);
	});
});
