/**
 * Real receivers for notifications, on port 0: an HTTP server that records each request (and
 * answers the statuses it is told to, in turn), and an SMTP sink that parses each message.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { simpleParser, type ParsedMail } from "mailparser";

export interface Received {
	method: string;
	url: string;
	headers: IncomingHttpHeaders;
	body: string;
}

export class HttpReceiver {
	readonly requests: Received[] = [];
	/** Statuses to answer, in turn; 200 once used up. */
	statuses: number[] = [];
	private server!: Server;
	url!: string;

	static async start(): Promise<HttpReceiver> {
		const receiver = new HttpReceiver();
		receiver.server = createServer((req, res) => {
			let body = "";
			req.on("data", chunk => (body += chunk));
			req.on("end", () => {
				receiver.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
				res.writeHead(receiver.statuses.shift() ?? 200).end("ok");
			});
		});
		await new Promise<void>(resolve => receiver.server.listen(0, "127.0.0.1", resolve));
		receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}`;
		return receiver;
	}

	close(): Promise<void> {
		return new Promise(resolve => this.server.close(() => resolve()));
	}
}

export class SmtpSink {
	readonly messages: ParsedMail[] = [];
	private server!: SMTPServer;
	port!: number;

	static async start(): Promise<SmtpSink> {
		const sink = new SmtpSink();
		sink.server = new SMTPServer({
			authOptional: true,
			disabledCommands: ["STARTTLS"],
			logger: false,
			onData(stream, _session, done) {
				simpleParser(stream)
					.then(mail => {
						sink.messages.push(mail);
						done();
					})
					.catch(done);
			}
		});
		await new Promise<void>(resolve => sink.server.listen(0, "127.0.0.1", () => resolve()));
		sink.port = (sink.server.server.address() as AddressInfo).port;
		return sink;
	}

	close(): Promise<void> {
		return new Promise(resolve => this.server.close(() => resolve()));
	}
}
