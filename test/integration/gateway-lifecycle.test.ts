/**
 * A gateway stopped before it fully started (its dependencies never came, another service failed
 * to start) stops cleanly: it closes what it opened and throws nothing.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import Moleculer, { type ServiceSchema } from "moleculer";
import GatewayService from "../../services/gateway.service.ts";

const gatewaySchema = (settings: Record<string, unknown> = {}) =>
	({ ...GatewayService, settings: { ...GatewayService.settings, port: 0, ...settings } }) as unknown as ServiceSchema;

describe("gateway lifecycle", () => {
	it("stops without an error when it was created but never started", async () => {
		const broker = new Moleculer.ServiceBroker({ logger: false });
		const gateway = broker.createService(gatewaySchema());
		await assert.doesNotReject(gateway._stop());
	});

	it("stops without an error when another service failed the broker's start while it waited for its dependencies", async () => {
		const broker = new Moleculer.ServiceBroker({ logger: false });
		// Its dependencies (auth, terminals, dispatcher) are not in this broker: it is still waiting when the start fails.
		const gateway = broker.createService(gatewaySchema({ $dependencyTimeout: 500 }));
		broker.createService({
			name: "failing",
			started() {
				throw new Error("cannot start");
			}
		});
		await assert.rejects(broker.start(), /cannot start/);
		await assert.doesNotReject(gateway._stop());
		await broker.stop();
	});
});
