<?php

declare(strict_types=1);

namespace Errand;

/**
 * errand in think-queue's words:
 *
 *     Errand::later(5, 'user:welcome_email', ['user_id' => 7, 'email' => 'ada@example.com'], 'emails');
 *     Errand::push('user:sync_crm', ['user_id' => 7]);
 *     Errand::status($job['id']);
 *     $outcome = Errand::verifyCallback($headers, $rawBody, $secret);
 *
 * The shared client reads ERRAND_URL (default http://127.0.0.1:8080) and
 * ERRAND_TOKEN from the environment, or is set with Errand::configure().
 */
final class Errand
{
    /** How old a callback's signature may be, in seconds, either way. */
    public const CALLBACK_TOLERANCE = 300;

    private static ?Client $client = null;

    public static function configure(string $baseUrl, string $token, float $timeout = 5.0): void
    {
        self::$client = new Client($baseUrl, $token, $timeout);
    }

    public static function client(): Client
    {
        if (self::$client === null) {
            $url = getenv('ERRAND_URL');
            self::$client = new Client($url !== false && $url !== '' ? $url : 'http://127.0.0.1:8080', (string) getenv('ERRAND_TOKEN'));
        }
        return self::$client;
    }

    /**
     * @param array<string, mixed> $payload
     * @param array{idempotency_key?: string, callback_url?: string, callback_token?: string} $options
     * @return array{id: string, type: string, queue: string, state: string, status_url: string, replayed: bool}
     */
    public static function push(string $type, array $payload = [], ?string $queue = null, array $options = []): array
    {
        return self::client()->push($type, $payload, $queue, $options);
    }

    /**
     * @param int|float|string $delay seconds, or a duration such as "90s"
     * @param array<string, mixed> $payload
     * @param array{idempotency_key?: string, callback_url?: string, callback_token?: string} $options
     * @return array{id: string, type: string, queue: string, state: string, status_url: string, replayed: bool}
     */
    public static function later(int|float|string $delay, string $type, array $payload = [], ?string $queue = null, array $options = []): array
    {
        return self::client()->later($delay, $type, $payload, $queue, $options);
    }

    /**
     * @return array<string, mixed>
     */
    public static function status(string $id): array
    {
        return self::client()->status($id);
    }

    /**
     * Checks a callback from errand and returns its outcome: id, type, state
     * (completed or failed), attempts and, on failure, error. Its header
     * X-Errand-Signature is t=<unix>,v1=hex(HMAC-SHA256(secret, t + "." + body)),
     * signed with errand's api.callback_secret within the last 5 minutes.
     *
     * @param array<string, string|list<string>> $headers the request's headers in any usual shape:
     *        getallheaders(), $_SERVER, Laravel's $request->headers->all(), ThinkPHP's $request->header()
     * @param string $body the raw request body, before any JSON decoding
     * @return array<string, mixed>
     * @throws InvalidSignature when the signature is missing, wrong or too old: answer 401
     */
    public static function verifyCallback(array $headers, string $body, string $secret, ?int $now = null): array
    {
        if ($secret === '') {
            throw new InvalidSignature('errand: no callback secret to verify with (api.callback_secret)');
        }
        $signature = self::header($headers, 'x-errand-signature');
        $parts = [];
        foreach (explode(',', $signature) as $kv) {
            [$k, $v] = array_pad(explode('=', trim($kv), 2), 2, '');
            $parts[$k] = $v;
        }
        $t = $parts['t'] ?? '';
        $v1 = $parts['v1'] ?? '';
        if (!ctype_digit($t) || $v1 === '') {
            throw new InvalidSignature('errand: missing or malformed X-Errand-Signature');
        }
        if (abs(($now ?? time()) - (int) $t) > self::CALLBACK_TOLERANCE) {
            throw new InvalidSignature('errand: callback signature too old or from the future');
        }
        if (!hash_equals(hash_hmac('sha256', $t . '.' . $body, $secret), $v1)) {
            throw new InvalidSignature('errand: callback signature does not match');
        }
        $outcome = json_decode($body, true);
        if (!is_array($outcome)) {
            throw new InvalidSignature('errand: callback body is not a JSON object');
        }
        return $outcome;
    }

    /**
     * The value of header $name (lower case, dashes) in $headers, whatever
     * their shape: "X-Errand-Signature", "x-errand-signature",
     * "HTTP_X_ERRAND_SIGNATURE", a string or a list of strings.
     *
     * @param array<string, string|list<string>> $headers
     */
    private static function header(array $headers, string $name): string
    {
        foreach ($headers as $k => $v) {
            $k = str_replace('_', '-', strtolower((string) $k));
            if (str_starts_with($k, 'http-')) {
                $k = substr($k, 5);
            }
            if ($k === $name) {
                return is_array($v) ? (string) ($v[0] ?? '') : (string) $v;
            }
        }
        return '';
    }
}
