/**
 * Trusting a private CA (a self-signed Tern, a company CA): its certificates join the process's
 * default trust store, so that both fetch (REST) and the socket (wss://) accept Tern's certificate.
 * NODE_EXTRA_CA_CERTS does the same from outside the process and is kept by this too.
 */
import tls from "node:tls";

/** The PEM certificates of a CA file's text, in order. */
export function pemCertificates(text: string): string[] {
	return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** Adds the CA's certificates to the process's default trust store (Node 22.19+ / 24.5+). */
export function trustCa(pem: string): void {
	const setDefault = (tls as { setDefaultCACertificates?: (certs: string[]) => void }).setDefaultCACertificates;
	if (typeof setDefault !== "function")
		throw new Error("--ca needs Node 22.19 or newer; on an older Node set NODE_EXTRA_CA_CERTS to the CA file instead");
	setDefault([...tls.getCACertificates("default"), ...pemCertificates(pem)]);
}
