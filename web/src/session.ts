/**
 * Who is signed in: the token (kept in localStorage, so a reload keeps the session), the user's
 * name and role read from it, and `can(action)` — the same access table the server enforces
 * (`lib/contracts/access.ts`), so the console never shows a button the API would refuse.
 */
import { computed, reactive } from "vue";
import { ACCESS } from "../../lib/contracts/access.ts";
import { api, auth } from "./api/client.ts";
import type { LoginAnswer, Role } from "./api/types.ts";

const STORAGE_KEY = "tern.session";
const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

interface Claims {
	sub?: string;
	role?: Role;
	uid?: number;
	exp?: number;
}

function claimsOf(token: string): Claims | null {
	try {
		const part = token.split(".")[1] ?? "";
		const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
		const claims = JSON.parse(json) as Claims;
		return typeof claims === "object" && claims !== null ? claims : null;
	} catch {
		return null;
	}
}

export const session = reactive({
	token: null as string | null,
	username: "",
	userId: 0,
	role: null as Role | null,
	expiresAt: 0
});

function adopt(token: string | null): void {
	const claims = token ? claimsOf(token) : null;
	const valid = Boolean(claims?.role && claims.exp && claims.exp * 1000 > Date.now());
	session.token = valid ? token : null;
	session.username = valid ? (claims!.sub ?? "") : "";
	session.userId = valid ? (claims!.uid ?? 0) : 0;
	session.role = valid ? claims!.role! : null;
	session.expiresAt = valid ? claims!.exp! * 1000 : 0;
	auth.token = session.token;
	if (session.token) localStorage.setItem(STORAGE_KEY, session.token);
	else localStorage.removeItem(STORAGE_KEY);
}

/** Restores the session a reload left (an expired token is dropped). */
export function restoreSession(onExpired: () => void): void {
	auth.onUnauthorized = () => {
		adopt(null);
		onExpired();
	};
	adopt(localStorage.getItem(STORAGE_KEY));
}

export async function login(username: string, password: string): Promise<void> {
	const answer = await api.post<LoginAnswer>("/auth/login", { username, password });
	adopt(answer.token);
}

export async function logout(): Promise<void> {
	try {
		if (session.token) await api.post("/auth/logout");
	} finally {
		adopt(null);
	}
}

export const signedIn = computed(() => session.token !== null);

/** Whether the signed-in user may call `action` (a name in the access table, `terminals.drain`). */
export function can(action: string): boolean {
	const rule = ACCESS[action];
	if (!rule || !session.role) return false;
	if (rule.access === "public") return true;
	if (rule.access === "terminal") return false;
	const least: Role = rule.access === "terminal-or-viewer" ? "viewer" : rule.access;
	return RANK[session.role] >= RANK[least];
}

/** Whether the user may act on an object owned by `owner` (an operator acts on their own only). */
export function owns(owner: string | null | undefined): boolean {
	return session.role === "admin" || (owner !== undefined && owner !== null && owner === session.username);
}
