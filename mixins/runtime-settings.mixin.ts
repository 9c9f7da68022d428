/**
 * A service that takes settings changed at run time (`PUT /api/system/config`) names which, and
 * how each is applied; the mixin listens for `config.changed` and applies those it names. The
 * monitor keeps the values and announces them again whenever a node joins.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { ConfigChangedEvent, RuntimeSettingName } from "../lib/contracts.ts";

type Apply<S> = (this: S, value: number) => void;

export function RuntimeSettingsMixin<S = Service>(apply: Partial<Record<RuntimeSettingName, Apply<S>>>): Partial<ServiceSchema> {
	return {
		events: {
			"config.changed"(this: S, ctx: Context<ConfigChangedEvent>) {
				for (const [name, value] of Object.entries(ctx.params.settings)) {
					const set = apply[name as RuntimeSettingName];
					if (set && typeof value === "number") set.call(this, value);
				}
			}
		}
	};
}
