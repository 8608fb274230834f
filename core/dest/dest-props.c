/*
 * dest-props.c: the SAP destination property names ferry knows (SAP-NOTES.md §2),
 * which of them are credentials, and "did you mean" for near misses.
 *
 * Unknown properties are kept verbatim, because SAP destinations carry custom ones;
 * only a near miss of a known name earns a warning.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dest/dest-int.h"
#include "util/errlist.h"

static const char *const known[] = {
    /* 2.1 HTTP, common */
    "Name", "Type", "URL", "Authentication", "ProxyType", "CloudConnectorLocationId",
    "Description", "URL.connectionTimeoutInSeconds", "URL.socketReadTimeoutInSeconds",
    "TrustStoreLocation", "TrustStorePassword", "TrustAll", "HostnameVerifier",
    "Preemptive", "sap-client",
    /* token service block */
    "tokenServiceURL", "tokenServiceURLType", "clientId", "clientSecret",
    "tokenServiceUser", "tokenServicePassword", "tokenService.addClientCredentialsInBody",
    "scope", "tokenServiceURL.ConnectionTimeoutInSeconds",
    "tokenServiceURL.SocketReadTimeoutInSeconds", "tokenServiceURL.ProxyType",
    "tokenService.KeyStoreLocation", "tokenService.KeyStorePassword",
    "clientAssertion.destinationName", "clientAssertion.type", "x_user_token.jwks",
    "x_user_token.jwks_uri", "x_user_token.header.typ",
    /* 2.2 per Authentication */
    "User", "Password", "KeyStore.Source", "KeyStoreLocation", "KeyStorePassword",
    "audience", "clientKey", "authnContextClassRef", "SAMLAssertionProvider",
    "nameQualifier", "assertionIssuer", "assertionRecipient", "nameIdFormat",
    "userIdSource", "skipUserAttributesPrefixInSAMLAttributes",
    "includeSigningCertificateInSAMLAssertion", "skipUserUuidInSAMLAttributes",
    "companyId", "samlAssertionEncoding", "SystemUser", "IssuerSID", "IssuerClient",
    "RecipientSID", "RecipientClient", "Certificate", "SigningKey",
    /* 2.3 RFC (any jco.client.* / jco.destination.* is allowed; these are known) */
    "jco.destination.proxy_type", "jco.client.cloud_connector_location_id",
    "jco.destination.description", "jco.destination.auth_type", "jco.client.user",
    "jco.client.alias_user", "jco.client.passwd", "jco.client.client", "jco.client.lang",
    "jco.client.tls_client_certificate_logon", "jco.client.tech_user_id",
    "jco.client.tech_user_secret", "jco.client.tech_user_service_url", "jco.client.ashost",
    "jco.client.sysnr", "jco.client.mshost", "jco.client.r3name", "jco.client.msserv",
    "jco.client.group", "jco.client.wshost", "jco.client.wsport", "jco.client.tls_trust_all",
    "jco.client.trace", "jco.client.codepage", "jco.client.delta",
    "jco.client.serialization_format", "jco.client.network", "jco.client.saprouter",
    "jco.client.gwhost", "jco.client.gwserv", "jco.client.snc_mode",
    "jco.client.snc_partnername", "jco.client.snc_qop", "jco.client.snc_myname",
    "jco.client.snc_lib", "jco.client.x509cert", "jco.client.mysapsso2", "jco.client.pcs",
    "jco.client.tpname", "jco.client.tphost", "jco.client.type", "jco.client.dest",
    "jco.client.lcheck", "jco.client.cpic_trace", "jco.client.getsso2",
    "jco.client.use_sapgui",
    "jco.destination.pool_capacity", "jco.destination.peak_limit",
    "jco.destination.max_get_client_time", "jco.destination.expiration_time",
    "jco.destination.expiration_check_period", "jco.destination.pool_check_connection",
    "jco.destination.repository_destination", "jco.destination.repository.user",
    "jco.destination.repository.passwd", "jco.destination.repository.check_interval",
    "jco.destination.ws_ping_period", "jco.destination.ws_pong_timeout",
    /* 2.4 LDAP */
    "ldap.url", "ldap.proxyType", "ldap.authentication", "ldap.user", "ldap.password",
    "ldap.startTLS",                 /* ferry: StartTLS on an ldap:// URL */
    /* 2.5 MAIL */
    "mail.user", "mail.password", "mail.transport.protocol", "mail.smtp.host",
    "mail.smtp.port", "mail.smtp.auth", "mail.smtp.from", "mail.smtps.host",
    "mail.smtps.port", "mail.smtps.auth", "mail.imap4.host", "mail.imap4.port",
    "mail.imap4.auth", "mail.imap4s.host", "mail.imap4s.port", "mail.imap4s.auth",
    "mail.pop3.host", "mail.pop3.port", "mail.pop3.auth", "mail.pop3s.host",
    "mail.pop3s.port", "mail.pop3s.auth",
    /* 2.6 TCP */
    "Address", "Port", "tcp.nodelay", "tcp.socket.linger", "tcp.socket.sndbuf",
    "tcp.socket.rcvbuf", "tcp.socket.timeout", "tcp.socket.keepalive",
    "tcp.socket.reuseaddr",
    /* ferry's own */
    "tenant", "policy", "level",
};

/* Families whose members are free-form (header names, JCo keys, ...). */
static const char *const families[] = {
    "URL.headers.", "URL.queries.", "tokenServiceURL.headers.", "tokenServiceURL.queries.",
    "tokenService.body.", "jco.client.", "jco.destination.", "ldap.", "mail.", "tcp.",
};

static const char *const secrets[] = {
    "Password", "clientSecret", "tokenServicePassword", "KeyStorePassword",
    "TrustStorePassword", "ldap.password", "jco.client.passwd", "mail.password",
    "tokenService.KeyStorePassword", "jco.client.tech_user_secret",
    "jco.destination.repository.passwd", "SigningKey", "jco.client.mysapsso2",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

bool
ferry_dest_prop_is_secret(const char *key)
{
    static const char *const header_families[] = {
        "URL.headers.", "tokenServiceURL.headers.",
    };

    for (size_t i = 0; i < COUNT(secrets); i++)
        if (strcmp(key, secrets[i]) == 0)
            return true;
    /* A static Authorization header is a credential however it is spelled. */
    for (size_t i = 0; i < COUNT(header_families); i++) {
        size_t n = strlen(header_families[i]);

        if (strncmp(key, header_families[i], n) == 0
            && (strcasecmp(key + n, "Authorization") == 0
                || strcasecmp(key + n, "Proxy-Authorization") == 0))
            return true;
    }
    return false;
}

static size_t
count_dots(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '.';
    return n;
}

const char *
ferry_dest_prop_suggest(const char *key, char *buf, size_t len)
{
    const char *best = NULL;
    int         best_d = 3;

    for (size_t i = 0; i < COUNT(known); i++) {
        if (strcmp(key, known[i]) == 0)
            return NULL;
    }
    /* A wrong case is always a mistake: SAP names are case-sensitive. */
    for (size_t i = 0; i < COUNT(known); i++) {
        if (strcasecmp(key, known[i]) == 0) {
            snprintf(buf, len, "%s", known[i]);
            return buf;
        }
    }
    if (strlen(key) >= 4) {
        for (size_t i = 0; i < COUNT(known); i++) {
            int d = ferry_edit_distance(key, known[i], 2);

            if (d < best_d) {
                best = known[i];
                best_d = d;
            }
        }
        if (best != NULL) {
            snprintf(buf, len, "%s", best);
            return buf;
        }
    }
    for (size_t i = 0; i < COUNT(families); i++)
        if (strncmp(key, families[i], strlen(families[i])) == 0)
            return NULL;
    /* A misspelt family prefix: "URL.header.X" → "URL.headers.X". */
    for (size_t i = 0; i < COUNT(families); i++) {
        size_t      want = count_dots(families[i]), seen = 0, plen = 0;
        const char *p;
        char        prefix[64];

        for (p = key; *p != '\0' && seen < want; p++)
            seen += *p == '.';
        if (seen < want || *p == '\0')
            continue;
        plen = (size_t)(p - key);
        if (plen >= sizeof(prefix))
            continue;
        memcpy(prefix, key, plen);
        prefix[plen] = '\0';
        if (ferry_edit_distance(prefix, families[i], strlen(families[i]) >= 8 ? 2 : 1)
            <= (strlen(families[i]) >= 8 ? 2 : 1)) {
            snprintf(buf, len, "%s%s", families[i], p);
            return buf;
        }
    }
    return NULL;
}
