/**
 * The settings changed at run time: kept in `runtime_settings`, one row per setting, the value
 * as JSON. The monitor reads them at start and announces them; `PUT /api/system/config` writes
 * them here first, then announces.
 */
import type { RuntimeSettingModel, RuntimeSettingRow } from "../../models/runtime-setting.model.ts";
import { RUNTIME_SETTINGS, type RuntimeSettingName, type RuntimeSettings } from "../../lib/contracts.ts";

export const RUNTIME_NAMES = Object.keys(RUNTIME_SETTINGS) as RuntimeSettingName[];

/** fastest-validator params of `PUT /api/system/config`: each setting optional, in its range. */
export const updateConfigParams = {
	...Object.fromEntries(
		RUNTIME_NAMES.map(name => [
			name,
			{ type: "number", integer: true, min: RUNTIME_SETTINGS[name].min, max: RUNTIME_SETTINGS[name].max, optional: true }
		])
	),
	$$strict: true
};

export async function readRuntime(model: RuntimeSettingModel): Promise<RuntimeSettings> {
	const rows = (await model.findAll({ raw: true })) as unknown as RuntimeSettingRow[];
	const settings: RuntimeSettings = {};
	for (const row of rows)
		if ((RUNTIME_NAMES as string[]).includes(row.key))
			settings[row.key as RuntimeSettingName] = JSON.parse(row.value) as number;
	return settings;
}

export async function writeRuntime(
	model: RuntimeSettingModel,
	settings: RuntimeSettings,
	updatedBy: string | null,
	now: number
): Promise<void> {
	for (const [key, value] of Object.entries(settings))
		await model.upsert({ key, value: JSON.stringify(value), updatedBy, updatedAt: now });
}
