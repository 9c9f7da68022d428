/** Email through an SMTP server (nodemailer): a subject line, a text and an HTML body. */
import nodemailer from "nodemailer";
import type { EmailConfig } from "../../../lib/contracts.ts";
import { htmlOf, textOf, titleOf, type Message } from "../templates.ts";
import { Channel, DEFAULT_TIMEOUT_MS, DeliveryError } from "./base.ts";

const DEFAULT_FROM = "Tern <tern@localhost>";

export class EmailChannel extends Channel<EmailConfig> {
	readonly type = "email";
	protected readonly schema = {
		to: { type: "array", min: 1, max: 50, items: { type: "email", max: 254 } },
		from: { type: "string", min: 3, max: 320, optional: true },
		host: { type: "string", min: 1, max: 255 },
		port: { type: "number", integer: true, min: 1, max: 65535 },
		secure: { type: "boolean", optional: true },
		user: { type: "string", min: 1, max: 255, optional: true },
		password: { type: "string", min: 1, max: 1024, optional: true }
	};
	protected override readonly secretFields = ["password"];

	async send(config: EmailConfig, message: Message): Promise<void> {
		const transport = nodemailer.createTransport({
			host: config.host,
			port: config.port,
			secure: config.secure ?? false,
			auth: config.user ? { user: config.user, pass: config.password ?? "" } : undefined,
			connectionTimeout: DEFAULT_TIMEOUT_MS,
			greetingTimeout: DEFAULT_TIMEOUT_MS,
			socketTimeout: DEFAULT_TIMEOUT_MS
		});
		try {
			await transport.sendMail({
				from: config.from ?? DEFAULT_FROM,
				to: config.to,
				subject: titleOf(message),
				text: textOf(message),
				html: htmlOf(message)
			});
		} catch (err) {
			throw new DeliveryError(`SMTP ${config.host}:${config.port}: ${(err as Error).message}`);
		} finally {
			transport.close();
		}
	}
}
