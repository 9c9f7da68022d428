/**
 * The auth service's action params: each fastest-validator schema beside its TypeScript type.
 * `$$strict` refuses unknown fields; nothing is converted but the path's user id.
 */
import { TOKEN_SCOPES, type Role } from "../../lib/contracts.ts";
import { queryIntRule } from "../../lib/rules.ts";

export const ROLES: Role[] = ["admin", "operator", "viewer"];

const passwordRule = { type: "string", min: 8, max: 1024 };
/** A user id from the path (`/api/users/:id`): digits only, converted. */
const userIdRule = queryIntRule({ min: 1, max: 2 ** 31 - 1 });

export interface LoginParams {
	username: string;
	password: string;
}
export const loginParams = {
	username: { type: "string", min: 1, max: 64 },
	password: { type: "string", min: 1, max: 1024 },
	$$strict: true
};

export interface CreateUserParams extends LoginParams {
	role: Role;
}
export const createUserParams = {
	username: { type: "string", min: 1, max: 64, pattern: /^[A-Za-z0-9_.@-]+$/ },
	password: passwordRule,
	role: { type: "enum", values: ROLES },
	$$strict: true
};

export const userIdParams = { id: userIdRule };

export const updateUserParams = {
	id: userIdRule,
	role: { type: "enum", values: ROLES, optional: true },
	disabled: { type: "boolean", optional: true },
	password: { ...passwordRule, optional: true },
	currentPassword: { type: "string", min: 1, max: 1024, optional: true },
	$$strict: true
};

export const createTokenParams = {
	name: { type: "string", min: 1, max: 64, pattern: /^[A-Za-z0-9 _.:@-]+$/ },
	scope: { type: "enum", values: [...TOKEN_SCOPES] },
	expiresInDays: { type: "number", integer: true, min: 1, max: 3650, optional: true },
	$$strict: true
};

export const tokenIdParams = { id: { type: "string", min: 1, max: 64 } };

export const signTerminalParams = { terminalId: "string", keyVersion: "number" };
