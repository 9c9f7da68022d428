/**
 * docker-compose.yml and `npm run cluster` (cluster/layout.ts) describe one cluster: the same
 * nodes with the same services, every Tern node configured for NATS and MariaDB, the same
 * published ports. (`docker compose config` checks the file's syntax in CI where the plugin exists.)
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { LAYOUT, nodeEnv, type ClusterPlan } from "../../cluster/layout.ts";
import { loadConfig } from "../../moleculer.config.ts";

interface ComposeService {
	build?: string;
	image?: string;
	environment?: Record<string, string>;
	ports?: string[];
	healthcheck?: unknown;
	depends_on?: Record<string, unknown>;
}

const compose = parse(readFileSync(new URL("../../docker-compose.yml", import.meta.url), "utf8"), { merge: true }) as {
	services: Record<string, ComposeService>;
};

const plan: ClusterPlan = {
	basePort: 3000,
	healthBase: 3100,
	natsUrl: "nats://127.0.0.1:4222",
	dbUri: "mysql://root@127.0.0.1:3306/tern_local",
	namespace: "local",
	jwtSecret: "x".repeat(44),
	adminPassword: "admin-password-1",
	dataDir: "/tmp/tern-cluster",
	logLevel: "info"
};

describe("the local cluster and docker-compose.yml", () => {
	it("have the same Tern nodes with the same services, and compose adds NATS and MariaDB", () => {
		const tern = Object.entries(compose.services).filter(([, s]) => s.build);
		assert.deepEqual(tern.map(([name]) => name).sort(), LAYOUT.map(n => n.id).sort());
		for (const node of LAYOUT) {
			const env = compose.services[node.id].environment!;
			assert.deepEqual(env.SERVICES.split(",").sort(), [...node.services].sort(), node.id);
			assert.equal(env.TRANSPORTER, "nats://nats:4222");
			assert.match(env.DB_URI, /^mysql:\/\/.+@mariadb:3306\/tern$/);
			assert.ok(compose.services[node.id].healthcheck, `${node.id} has a health check`);
			assert.ok(compose.services[node.id].depends_on?.mariadb, `${node.id} waits for MariaDB`);
		}
		assert.ok(compose.services.nats.image?.startsWith("nats:"));
		assert.ok(compose.services.mariadb.image?.startsWith("mariadb:"));
	});

	it("publish the api and the two gateways on the same ports", () => {
		for (const node of LAYOUT) {
			const published = (compose.services[node.id].ports ?? []).map(p => Number(p.split(":")[0]));
			assert.deepEqual(published, node.portOffset === null ? [] : [3000 + node.portOffset], node.id);
		}
	});

	it("give every local node an environment Tern accepts, with its own ports and data folder", () => {
		const ports = new Set<string>();
		for (const [i, node] of LAYOUT.entries()) {
			const env = nodeEnv(plan, node, i);
			const config = loadConfig(env);
			assert.deepEqual(config.services, node.services);
			assert.equal(config.transporter, plan.natsUrl);
			assert.equal(config.dbUri, plan.dbUri);
			assert.equal(config.healthPort, plan.healthBase + i);
			assert.equal(config.dataDir, `${plan.dataDir}/${node.id}`);
			for (const port of [env.PORT, env.HEALTH_PORT].filter(p => p !== "0")) {
				assert.ok(!ports.has(port), `port ${port} taken twice`);
				ports.add(port);
			}
		}
	});
});
