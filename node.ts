/**
 * Builds and starts one Tern node: a broker with the configured services, each given its
 * settings from the configuration. The entry point, the tests and the benchmarks all start
 * Tern through here, so they run the same thing.
 */
import Moleculer, { type BrokerOptions, type ServiceBroker, type ServiceSchema } from "moleculer";
import { brokerOptions, describeConfig, type ServiceName, type TernConfig } from "./moleculer.config.ts";
import ApiService from "./services/api.service.ts";
import AuthService from "./services/auth.service.ts";
import CacheService from "./services/cache.service.ts";
import DispatcherService from "./services/dispatcher.service.ts";
import GatewayService from "./services/gateway.service.ts";
import TerminalsService from "./services/terminals.service.ts";
import SchedulerService from "./services/scheduler.service.ts";
import ScriptsService from "./services/scripts.service.ts";
import MonitorService from "./services/monitor.service.ts";
import AlertService from "./services/alert.service.ts";
import AuditService from "./services/audit.service.ts";
import { deriveKey } from "./lib/secret-box.ts";
import { derivedDataKey } from "./lib/keyring.ts";
import { replCommands } from "./lib/repl-commands.ts";

const SCHEMAS: Record<ServiceName, ServiceSchema> = {
	api: ApiService as unknown as ServiceSchema,
	auth: AuthService as unknown as ServiceSchema,
	terminals: TerminalsService as unknown as ServiceSchema,
	cache: CacheService as unknown as ServiceSchema,
	dispatcher: DispatcherService as unknown as ServiceSchema,
	gateway: GatewayService as unknown as ServiceSchema,
	scheduler: SchedulerService as unknown as ServiceSchema,
	scripts: ScriptsService as unknown as ServiceSchema,
	monitor: MonitorService as unknown as ServiceSchema,
	alert: AlertService as unknown as ServiceSchema,
	audit: AuditService as unknown as ServiceSchema
};

/** Services that keep sealed values. */
const SEALING: Partial<Record<ServiceName, true>> = { dispatcher: true, scheduler: true, scripts: true, alert: true };

export type SettingsOverrides = Partial<Record<ServiceName, Record<string, unknown>>>;

export interface NodeOptions {
	config: TernConfig;
	/** Per-service settings on top of those derived from the configuration (tests shorten timeouts). */
	settings?: SettingsOverrides;
	broker?: Partial<BrokerOptions>;
}

/** What a service that seals values at rest is given (see mixins/keyring.mixin.ts). */
function keyringSettings(config: TernConfig) {
	// The key a cluster derives from JWT_SECRET when TERN_DATA_KEYS is unset stays able to open
	// what it sealed once real keys are set, so that the re-sealing moves those values by itself.
	const derived = { id: "jwt", key: derivedDataKey(config.jwtSecret, "tern data key") };
	const dataKeys = config.dataKeys.some(key => key.id === derived.id) ? config.dataKeys : [...config.dataKeys, derived];
	// Alert channel secrets of the first format were sealed with a key derived from the JWT secret.
	return { dataKeys, legacyDataKey: deriveKey(config.jwtSecret, "tern alert channels") };
}

function settingsFor(name: ServiceName, config: TernConfig): Record<string, unknown> {
	switch (name) {
		case "api":
			return {
				port: config.port,
				requestLimits: { window: 1000, address: config.rateLimit, token: config.tokenRateLimit },
				https: config.tls ? { cert: config.tls.cert, key: config.tls.key } : null,
				corsOrigins: config.corsOrigins
			};
		case "auth":
			return {
				dbUri: config.dbUri,
				jwtSecret: config.jwtSecret,
				jwtPreviousSecrets: config.jwtPreviousSecrets,
				terminalTokenTtl: config.terminalTokenTtl,
				adminPassword: config.adminPassword
			};
		case "dispatcher":
			return {
				dbUri: config.dbUri,
				maxResultBytes: config.maxResultBytes,
				dbDeadlineMs: config.dbDeadlineMs,
				journalDir: config.journalDir,
				...keyringSettings(config)
			};
		case "terminals":
			return { dbUri: config.dbUri };
		case "scheduler":
		case "scripts":
			return { dbUri: config.dbUri, ...keyringSettings(config) };
		case "audit":
			return { dbUri: config.dbUri };
		case "monitor":
			return { dbUri: config.dbUri, config: describeConfig(config), commit: config.commit };
		case "alert":
			return { dbUri: config.dbUri, ...keyringSettings(config) };
		case "gateway":
			return {
				port: config.port,
				maxResultBytes: config.maxResultBytes,
				messageRateLimit: config.socketRateLimit,
				...config.gatewayFaults,
				tls: config.tls ? { cert: config.tls.cert, key: config.tls.key } : null,
				corsOrigins: config.corsOrigins
			};
		default:
			return {};
	}
}

/** A broker with the node's services created but not started. */
export function createNode(options: NodeOptions): ServiceBroker {
	const { config } = options;
	const broker = new Moleculer.ServiceBroker({
		...brokerOptions(config),
		replOptions: { delimiter: "tern $", customCommands: replCommands },
		...options.broker
	} as BrokerOptions);
	if (config.dataKeysFrom === "jwt" && config.services.some(name => name in SEALING))
		broker
			.getLogger("config")
			.warn(
				"TERN_DATA_KEYS is not set: secrets at rest are sealed with a key derived from JWT_SECRET. " +
					'Set TERN_DATA_KEYS="k1:$(openssl rand -base64 32)" on every node (see docs/security/encryption.md).'
			);
	for (const name of config.services) {
		const schema = SCHEMAS[name];
		broker.createService({
			...schema,
			settings: { ...schema.settings, ...settingsFor(name, config), ...options.settings?.[name] }
		});
	}
	return broker;
}

/** A node that fails to start is stopped again: no half-started node keeps its port and its timers. */
export async function startNode(options: NodeOptions): Promise<ServiceBroker> {
	const broker = createNode(options);
	try {
		await broker.start();
	} catch (err) {
		await broker.stop().catch(() => undefined);
		throw err;
	}
	return broker;
}
