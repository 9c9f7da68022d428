/**
 * Liveness and readiness over HTTP, for Kubernetes probes and load balancers. Liveness: the
 * process answers. Readiness: the broker has started, the transporter (if any) is connected,
 * and every local service that has a `health` action says it is healthy.
 */
import http, { type Server } from "node:http";
import type { ServiceBroker } from "moleculer";
import { METRICS_CONTENT_TYPE, renderMetrics } from "./metrics/reporter.ts";
import { setSecureHeaders } from "./http/headers.ts";

export interface HealthReport {
	ready: boolean;
	nodeID: string;
	transporter: "none" | "connected" | "disconnected";
	services: Record<string, { ok: boolean; error?: string }>;
}

interface Transit {
	connected?: boolean;
	/** The transporter; NATS's keeps its client, which reconnects on its own without telling the transit. */
	tx?: { client?: { rtt?: () => Promise<number> } | null };
}

/**
 * Whether the transporter reaches its server now. `transit.connected` stays true while the NATS
 * client is cut off and retrying, so where the client can tell (NATS: `rtt()`, a round trip that
 * fails at once when disconnected) it is asked.
 */
async function transporterReachable(transit: Transit, timeoutMs: number): Promise<boolean> {
	if (!transit.connected) return false;
	const client = transit.tx?.client;
	if (typeof client?.rtt !== "function") return true;
	let timer: NodeJS.Timeout | undefined;
	try {
		await Promise.race([
			client.rtt(),
			new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("no answer")), timeoutMs)))
		]);
		return true;
	} catch {
		return false;
	} finally {
		clearTimeout(timer);
	}
}

/** Asks the node's own services how they are; never throws. */
export async function readiness(broker: ServiceBroker, started: () => boolean): Promise<HealthReport> {
	const transit = (broker as unknown as { transit?: Transit }).transit;
	const report: HealthReport = {
		ready: started(),
		nodeID: broker.nodeID,
		transporter: transit ? ((await transporterReachable(transit, 1000)) ? "connected" : "disconnected") : "none",
		services: {}
	};
	if (report.transporter === "disconnected") report.ready = false;
	for (const service of broker.services) {
		if (!service.schema.actions || !("health" in service.schema.actions)) continue;
		try {
			await broker.call(`${service.name}.health`, {}, { nodeID: broker.nodeID, timeout: 2000 });
			report.services[service.name] = { ok: true };
		} catch (err) {
			report.services[service.name] = { ok: false, error: (err as Error).message };
			report.ready = false;
		}
	}
	return report;
}

/**
 * Serves `/healthz/live`, `/healthz/ready` and `/metrics` (this node's) on `port`. Plain HTTP even
 * when the main port has TLS: kubelet probes and Prometheus scrape it from inside the cluster,
 * it takes no token and serves nothing secret (docs/security/transport.md). It carries the
 * secure headers all the same.
 */
export function startHealthServer(broker: ServiceBroker, port: number, started: () => boolean): Promise<Server> {
	const server = http.createServer((req, res) => {
		setSecureHeaders(req, res, false);
		const path = (req.url ?? "/").split("?")[0];
		if (path === "/healthz/live") {
			res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ live: true, nodeID: broker.nodeID }));
			return;
		}
		if (path === "/healthz/ready") {
			readiness(broker, started).then(
				report =>
					res.writeHead(report.ready ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(report)),
				err => res.writeHead(503).end(String(err))
			);
			return;
		}
		if (path === "/metrics") {
			const text = renderMetrics(broker);
			res.writeHead(text === null ? 404 : 200, { "content-type": METRICS_CONTENT_TYPE }).end(text ?? "# metrics are off\n");
			return;
		}
		res.writeHead(404).end();
	});
	return new Promise((resolve, reject) => {
		server.once("error", reject);
		server.listen(port, () => resolve(server));
	});
}
