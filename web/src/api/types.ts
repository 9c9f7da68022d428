/**
 * The shapes the console reads and sends. They are the server's own contracts
 * (`lib/contracts/`), imported as types, so a change on the wire fails the console's type check;
 * shapes the contracts do not declare are declared here, once.
 */
import type { ConfirmationChallenge } from "../../../lib/contracts.ts";

export type * from "../../../lib/contracts.ts";

export type ConfirmationOffer = ConfirmationChallenge["confirm"];

/** A page of a list answer (`{ rows, total }`). */
export interface Paged<T> {
	rows: T[];
	total: number;
}

/** `POST /api/auth/login`. */
export interface LoginAnswer {
	token: string;
	expiresIn: number;
	role: "admin" | "operator" | "viewer";
}
