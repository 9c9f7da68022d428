/**
 * A service that keeps sealed values at rest: its keyring (from the node's data keys, see
 * moleculer.config.ts `dataKeys`), kept out of the service's announced settings, and the
 * background re-sealing of its tables (lib/resealer.ts), started by the service once its
 * store is open (`startResealing`) and stopped with it.
 */
import type { Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { Keyring, type DataKey } from "../lib/keyring.ts";
import { Resealer, type ResealTarget } from "../lib/resealer.ts";

export interface KeyringSettings extends ServiceSettingSchema {
	/** The data keys, the active one first (node.ts hands them from the configuration). */
	dataKeys: DataKey[];
	/** The key of values of the first format (`enc:v1:`), derived from the JWT secret. */
	legacyDataKey: string;
	/** How often the re-sealing looks for values on older keys, ms. @defaultValue 10 min */
	resealInterval: number;
}

export interface KeyringVars {
	keyring: Keyring;
	resealer: Resealer | undefined;
}

export interface KeyringMethods {
	/** Starts the re-sealing of these tables: a pass now, then one every `resealInterval`. */
	startResealing(targets: () => ResealTarget[]): void;
}

type KeyringThis = Service<KeyringSettings> & KeyringVars;

export function KeyringMixin(): Partial<ServiceSchema> {
	const schema: Partial<ServiceSchema<KeyringSettings, KeyringMethods, KeyringVars>> = {
		settings: {
			$secureSettings: ["dataKeys", "legacyDataKey"],
			dataKeys: [],
			legacyDataKey: "",
			resealInterval: 10 * 60_000
		},
		methods: {
			startResealing(this: KeyringThis, targets: () => ResealTarget[]) {
				this.resealer = new Resealer(this.keyring, targets, this.logger);
				this.resealer.start(this.settings.resealInterval);
			}
		},
		created(this: KeyringThis) {
			const { dataKeys, legacyDataKey } = this.settings;
			if (!dataKeys?.length) throw new TypeError(`Service '${this.name}' needs settings.dataKeys (see node.ts)`);
			this.keyring = new Keyring(dataKeys, legacyDataKey || undefined);
		},
		async stopped(this: KeyringThis) {
			await this.resealer?.stop();
		}
	};
	// Typed for its own `this` above; a service mixes it in whatever its own settings.
	return schema as unknown as Partial<ServiceSchema>;
}
