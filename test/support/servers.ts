/**
 * The servers some suites need: MariaDB (TERN_TEST_MYSQL, default mysql://root@127.0.0.1:3306)
 * and NATS (TERN_TEST_NATS, default nats://127.0.0.1:4222), each looked for once per test file.
 * A suite that needs one is skipped, saying which, when it does not answer — except under
 * `CI=true`, where a missing server fails the suite instead.
 *
 *   describe("… on MariaDB", { skip: needs("mariadb") }, () => …)
 */
import { MYSQL_SERVER, NATS_URL, reachable } from "./node-process.ts";

export type Server = "mariadb" | "nats";

const URLS: Record<Server, string> = { mariadb: MYSQL_SERVER, nats: NATS_URL };

/** How to start each, on Debian. */
export const HOW_TO_START: Record<Server, string> = {
	mariadb: "apt-get install mariadb-server && service mariadb start (root without a password on 127.0.0.1)",
	nats: "apt-get install nats-server && nats-server -a 127.0.0.1 -p 4222 -js &"
};

/** Whether something accepts TCP connections at the host and port of `url`. */
export const answers = (url: string, timeoutMs = 1000): Promise<boolean> => reachable(url, timeoutMs);

/** The servers that do not answer, with their address. */
export async function missingServers(): Promise<{ server: Server; url: string }[]> {
	const entries = Object.entries(URLS) as [Server, string][];
	const found = await Promise.all(entries.map(([, url]) => answers(url)));
	return entries.filter((_, i) => !found[i]).map(([server, url]) => ({ server, url }));
}

const missing = new Set((await missingServers()).map(m => m.server));

/**
 * `false` when every named server answers, else why the suite is skipped (the value of
 * `describe`'s `skip`). Under CI=true a missing server throws: the suite fails, loudly.
 */
export function needs(...servers: Server[]): string | false {
	const absent = servers.filter(s => missing.has(s));
	if (absent.length === 0) return false;
	const what = absent.map(s => `${s} at ${URLS[s]}`).join(" and ");
	const verb = absent.length === 1 ? "does" : "do";
	if (process.env.CI === "true") throw new Error(`This suite needs ${what}, which ${verb} not answer (CI=true: no skipping)`);
	return `needs ${what}, which ${verb} not answer`;
}
