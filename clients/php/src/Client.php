<?php

declare(strict_types=1);

namespace Errand;

/**
 * A client of errand's job API (POST /api/jobs, GET /api/jobs/{id}). One per
 * errand server and token; Errand's static methods use a shared one.
 */
final class Client
{
    /** Attempts of one request when errand cannot be reached or answers 5xx. */
    private const ATTEMPTS = 3;

    private string $baseUrl;

    /**
     * @param string $baseUrl errand serve's address, e.g. http://127.0.0.1:8080
     * @param string $token   one of errand's api.tokens
     * @param float  $timeout seconds one request may take
     */
    public function __construct(string $baseUrl, private string $token, private float $timeout = 5.0)
    {
        $this->baseUrl = rtrim($baseUrl, '/');
        if ($token === '') {
            throw new ErrandException('errand: no API token (one of api.tokens; e.g. ERRAND_TOKEN)');
        }
    }

    /**
     * Queues a job to run now: think-queue's Queue::push.
     *
     * @param array<string, mixed> $payload the job type's payload
     * @param string|null          $queue   null = the job type's own queue
     * @param array{idempotency_key?: string, callback_url?: string, callback_token?: string} $options
     * @return array{id: string, type: string, queue: string, state: string, status_url: string, replayed: bool}
     */
    public function push(string $type, array $payload = [], ?string $queue = null, array $options = []): array
    {
        return $this->enqueue(null, $type, $payload, $queue, $options);
    }

    /**
     * Queues a job to run after $delay: think-queue's Queue::later.
     *
     * @param int|float|string $delay seconds, or a duration such as "90s" or "1h30m"
     * @param array<string, mixed> $payload
     * @param array{idempotency_key?: string, callback_url?: string, callback_token?: string} $options
     * @return array{id: string, type: string, queue: string, state: string, status_url: string, replayed: bool}
     */
    public function later(int|float|string $delay, string $type, array $payload = [], ?string $queue = null, array $options = []): array
    {
        return $this->enqueue($delay, $type, $payload, $queue, $options);
    }

    /**
     * The job's state now: id, type, queue, state (pending, scheduled,
     * running, retrying, completed, failed), attempts, max_attempts,
     * last_error, next_run_at, completed_at.
     *
     * @return array<string, mixed>
     * @throws JobNotFound when errand knows no such job for this token
     */
    public function status(string $id): array
    {
        [$status, $body] = $this->request('GET', '/api/jobs/' . rawurlencode($id), null, []);
        return $this->decode($status, $body, 200);
    }

    /**
     * @param array<string, mixed> $payload
     * @param array<string, string> $options
     * @return array{id: string, type: string, queue: string, state: string, status_url: string, replayed: bool}
     */
    private function enqueue(int|float|string|null $delay, string $type, array $payload, ?string $queue, array $options): array
    {
        $unknown = array_diff(array_keys($options), ['idempotency_key', 'callback_url', 'callback_token']);
        if ($unknown !== []) {
            throw new ErrandException('errand: unknown option(s) ' . implode(', ', $unknown));
        }
        // An empty PHP array would encode as [], which is not a JSON object.
        $job = ['type' => $type, 'payload' => (object) $payload];
        if ($delay !== null) {
            $job['delay'] = $delay;
        }
        if ($queue !== null) {
            $job['queue'] = $queue;
        }
        foreach (['callback_url', 'callback_token'] as $k) {
            if (isset($options[$k])) {
                $job[$k] = $options[$k];
            }
        }
        $body = json_encode($job, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
        // Every request carries a key, so the retries below never queue a
        // job twice; the caller's own key also makes its retries safe (a
        // second call with the same key and job answers the first job again).
        $key = $options['idempotency_key'] ?? bin2hex(random_bytes(16));
        [$status, $answer, $headers] = $this->request('POST', '/api/jobs', $body, ['Idempotency-Key: ' . $key]);
        $job = $this->decode($status, $answer, 202);
        $job['replayed'] = strtolower($headers['idempotent-replayed'] ?? '') === 'true';
        return $job;
    }

    /**
     * @return array<string, mixed>
     */
    private function decode(int $status, string $body, int $want): array
    {
        $data = json_decode($body, true);
        if ($status === $want && is_array($data)) {
            return $data;
        }
        $error = is_array($data) && isset($data['error']) ? (string) $data['error'] : trim(substr($body, 0, 200));
        $fields = is_array($data) && isset($data['fields']) && is_array($data['fields']) ? $data['fields'] : [];
        $message = "errand answered $status: $error";
        if ($fields !== []) {
            $message .= ' (' . implode('; ', array_map(fn ($k, $v) => "$k: $v", array_keys($fields), $fields)) . ')';
        }
        throw match ($status) {
            409 => new IdempotencyConflict($status, $message, $fields),
            404 => new JobNotFound($status, $message, $fields),
            default => new RequestFailed($status, $message, $fields),
        };
    }

    /**
     * Sends one request, again on a network error or a 5xx (errand saves a
     * job before it answers, so a lost answer is retried under the same
     * Idempotency-Key).
     *
     * @param list<string> $headers
     * @return array{0: int, 1: string, 2: array<string, string>}
     */
    private function request(string $method, string $path, ?string $body, array $headers): array
    {
        $headers[] = 'Authorization: Bearer ' . $this->token;
        $headers[] = 'Accept: application/json';
        if ($body !== null) {
            $headers[] = 'Content-Type: application/json';
        }
        $error = '';
        for ($attempt = 1; $attempt <= self::ATTEMPTS; $attempt++) {
            if ($attempt > 1) {
                usleep(200_000 * ($attempt - 1));
            }
            $got = [];
            $ch = curl_init($this->baseUrl . $path);
            curl_setopt_array($ch, [
                CURLOPT_CUSTOMREQUEST => $method,
                CURLOPT_RETURNTRANSFER => true,
                CURLOPT_HTTPHEADER => $headers,
                CURLOPT_TIMEOUT_MS => (int) ($this->timeout * 1000),
                CURLOPT_CONNECTTIMEOUT_MS => (int) (min($this->timeout, 3.0) * 1000),
                CURLOPT_FOLLOWLOCATION => false,
                CURLOPT_HEADERFUNCTION => function ($ch, string $line) use (&$got): int {
                    if (str_contains($line, ':')) {
                        [$k, $v] = explode(':', $line, 2);
                        $got[strtolower(trim($k))] = trim($v);
                    }
                    return strlen($line);
                },
            ]);
            if ($body !== null) {
                curl_setopt($ch, CURLOPT_POSTFIELDS, $body);
            }
            $answer = curl_exec($ch);
            $status = (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
            $error = curl_error($ch);
            curl_close($ch);
            if ($answer !== false && $status > 0 && $status < 500) {
                return [$status, (string) $answer, $got];
            }
            if ($answer !== false && $status >= 500) {
                $error = "errand answered $status: " . trim(substr((string) $answer, 0, 200));
            }
        }
        throw new ErrandException("errand: $method $path failed after " . self::ATTEMPTS . " attempts: $error");
    }
}
