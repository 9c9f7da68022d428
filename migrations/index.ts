import type { QueryInterface } from "sequelize";
import * as initial from "./0001-initial.ts";
import * as jobs from "./0002-jobs.ts";
import * as scriptsAndLogs from "./0003-scripts-and-logs.ts";
import * as terminalFleet from "./0004-terminal-fleet.ts";
import * as alerts from "./0005-alerts.ts";
import * as runtimeSettings from "./0006-runtime-settings.ts";
import * as security from "./0007-security.ts";
import * as console_ from "./0008-console.ts";
import * as fencing from "./0009-fencing.ts";

export interface Migration {
	name: string;
	up(qi: QueryInterface): Promise<void>;
	down(qi: QueryInterface): Promise<void>;
}

/** Every migration, oldest first. Append; never edit one that has shipped. */
export const migrations: Migration[] = [
	{ name: "0001-initial", ...initial },
	{ name: "0002-jobs", ...jobs },
	{ name: "0003-scripts-and-logs", ...scriptsAndLogs },
	{ name: "0004-terminal-fleet", ...terminalFleet },
	{ name: "0005-alerts", ...alerts },
	{ name: "0006-runtime-settings", ...runtimeSettings },
	{ name: "0007-security", ...security },
	{ name: "0008-console", ...console_ },
	{ name: "0009-fencing", ...fencing }
];
