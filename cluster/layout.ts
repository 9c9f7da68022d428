/**
 * The local cluster's layout: which nodes, with which services, on which ports. `npm run cluster`
 * starts it as processes on this machine; `docker-compose.yml` describes the same nodes as
 * containers (test/unit/cluster-layout.test.ts keeps the two in step).
 */
import type { ServiceName } from "../moleculer.config.ts";

export interface LocalNode {
	id: string;
	services: ServiceName[];
	/** Its HTTP port, offset from the base port: the api's REST and console, a gateway's sockets. */
	portOffset: number | null;
}

export const LAYOUT: readonly LocalNode[] = [
	{ id: "api", services: ["api", "auth", "terminals", "scripts", "audit"], portOffset: 0 },
	{ id: "gateway-1", services: ["gateway"], portOffset: 1 },
	{ id: "gateway-2", services: ["gateway"], portOffset: 2 },
	{ id: "dispatcher-1", services: ["dispatcher"], portOffset: null },
	{ id: "dispatcher-2", services: ["dispatcher"], portOffset: null },
	{ id: "scheduler", services: ["scheduler"], portOffset: null },
	{ id: "cache", services: ["cache"], portOffset: null },
	{ id: "monitor", services: ["monitor"], portOffset: null },
	{ id: "alert", services: ["alert"], portOffset: null }
];

export interface ClusterPlan {
	/** The api's port; gateways listen on the next ones. */
	basePort: number;
	/** Health ports start here, one per node. */
	healthBase: number;
	natsUrl: string;
	/** The database's DB_URI. */
	dbUri: string;
	namespace: string;
	jwtSecret: string;
	adminPassword: string;
	/** Each node's data folder is `<dataDir>/<id>`. */
	dataDir: string;
	logLevel: string;
}

/** A node's environment: what makes `node tern.ts` that node of the cluster. */
export function nodeEnv(plan: ClusterPlan, node: LocalNode, index: number): Record<string, string> {
	return {
		TRANSPORTER: plan.natsUrl,
		DB_URI: plan.dbUri,
		NAMESPACE: plan.namespace,
		JWT_SECRET: plan.jwtSecret,
		TERN_ADMIN_PASSWORD: plan.adminPassword,
		NODE_ID: `${plan.namespace}-${node.id}`,
		SERVICES: node.services.join(","),
		PORT: String(node.portOffset === null ? 0 : plan.basePort + node.portOffset),
		HEALTH_PORT: String(plan.healthBase + index),
		TERN_DATA_DIR: `${plan.dataDir}/${node.id}`,
		LOGLEVEL: plan.logLevel
	};
}
