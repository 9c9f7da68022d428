/**
 * cache: terminal presence in memory (terminalId → gateway node, session, activity). Every
 * replica follows the same broadcast events, so each holds the same picture; a replica that
 * starts (or sees a gateway join) reads the sessions the gateways already hold.
 */
import { readAll } from "../lib/paging.ts";
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type {
	Presence,
	ReconcileCheck,
	TerminalActiveEvent,
	TerminalConnectedEvent,
	TerminalDisconnectedEvent
} from "../lib/contracts.ts";

type CacheSettings = ServiceSettingSchema;

interface CacheVars {
	presence: Map<string, Presence>;
}
interface CacheMethods {
	rebuildFrom(nodeID: string): Promise<void>;
}
type CacheThis = Service<CacheSettings> & CacheVars & CacheMethods;

const CacheService: ServiceSchema<CacheSettings, CacheMethods, CacheVars> = {
	name: "cache",
	actions: {
		/** The live connection of a terminal, or null when it is offline. */
		presence: {
			visibility: "public",
			params: { terminalId: "string" },
			handler(this: CacheThis, ctx: Context<{ terminalId: string }>): Presence | null {
				return this.presence.get(ctx.params.terminalId) ?? null;
			}
		},

		/** Live connections, all (a page of them with offset/limit; see lib/paging.ts) or of the named terminals. */
		presenceList: {
			visibility: "public",
			params: {
				terminalIds: { type: "array", items: "string", optional: true },
				offset: { type: "number", integer: true, min: 0, optional: true },
				limit: { type: "number", integer: true, min: 1, optional: true }
			},
			handler(this: CacheThis, ctx: Context<{ terminalIds?: string[]; offset?: number; limit?: number }>): Presence[] {
				if (!ctx.params.terminalIds) {
					const all = [...this.presence.values()];
					const offset = ctx.params.offset ?? 0;
					return ctx.params.limit || offset
						? all.slice(offset, ctx.params.limit ? offset + ctx.params.limit : undefined)
						: all;
				}
				return ctx.params.terminalIds.map(id => this.presence.get(id)).filter((p): p is Presence => Boolean(p));
			}
		},

		/** The consistency check's part here: sessions of gateway nodes that are gone, dropped. */
		reconcile: {
			visibility: "public",
			handler(this: CacheThis): ReconcileCheck[] {
				const alive = new Set(
					(
						this.broker.registry.getNodeList({ onlyAvailable: true, withServices: false }) as unknown as {
							id: string;
						}[]
					).map(n => n.id)
				);
				const found: string[] = [];
				for (const [id, p] of this.presence)
					if (!alive.has(p.nodeID)) {
						found.push(id);
						this.presence.delete(id);
					}
				const description = "a session held by a gateway node that is gone";
				return [
					{
						name: "presence-dead-node",
						description,
						found: found.length,
						repaired: found.length,
						samples: found.slice(0, 10)
					}
				];
			}
		}
	},
	events: {
		"terminal.connected"(this: CacheThis, ctx: Context<TerminalConnectedEvent>) {
			this.presence.set(ctx.params.terminalId, { ...ctx.params });
		},
		/** Only the session that is gone is removed: a reconnect elsewhere may have come first. */
		"terminal.disconnected"(this: CacheThis, ctx: Context<TerminalDisconnectedEvent>) {
			const current = this.presence.get(ctx.params.terminalId);
			if (current && current.sessionId === ctx.params.sessionId) this.presence.delete(ctx.params.terminalId);
		},
		"terminal.active"(this: CacheThis, ctx: Context<TerminalActiveEvent>) {
			for (const item of ctx.params.items) {
				const current = this.presence.get(item.terminalId);
				if (current && item.lastActiveAt > current.lastActiveAt) current.lastActiveAt = item.lastActiveAt;
			}
		},
		/** A gateway node that left took its connections with it. */
		"$node.disconnected"(this: CacheThis, ctx: Context<{ node: { id: string } }>) {
			for (const [id, p] of this.presence) if (p.nodeID === ctx.params.node.id) this.presence.delete(id);
		},
		/** A node joined (or came back): learn the sessions it already holds. */
		async "$node.connected"(this: CacheThis, ctx: Context<{ node: { id: string } }>) {
			await this.rebuildFrom(ctx.params.node.id);
		}
	},
	methods: {
		/** Presence of every session held by the gateway on `nodeID`, if it runs one. */
		async rebuildFrom(this: CacheThis, nodeID: string) {
			const services = this.broker.registry.getServiceList({ onlyAvailable: true }) as { name: string; nodeID: string }[];
			if (!services.some(s => s.name === "gateway" && s.nodeID === nodeID)) return;
			try {
				const sessions = await readAll<Presence>(this.broker, "gateway.sessions", { nodeID });
				for (const p of sessions) {
					const current = this.presence.get(p.terminalId);
					if (!current || current.connectedAt <= p.connectedAt) this.presence.set(p.terminalId, p);
				}
			} catch (err) {
				this.logger.warn(`Could not read the sessions of gateway ${nodeID}: ${(err as Error).message}`);
			}
		}
	},
	created(this: CacheThis) {
		this.presence = new Map();
	},
	/** A fresh replica learns what the gateways already hold; events keep it current after that. */
	async started(this: CacheThis) {
		const services = this.broker.registry.getServiceList({ onlyAvailable: true }) as { name: string; nodeID: string }[];
		for (const nodeID of new Set(services.filter(s => s.name === "gateway").map(s => s.nodeID)))
			await this.rebuildFrom(nodeID);
	}
};

export default CacheService;
