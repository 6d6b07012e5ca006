<?php

declare(strict_types=1);

namespace Errand;

/**
 * errand answered, and not with success: a 401 (bad token), 413, 422 (the
 * fields that are wrong are in $fields), 404, or a 5xx after the retries.
 */
class RequestFailed extends ErrandException
{
    /**
     * @param array<string, string> $fields the invalid fields of a 422, by name
     */
    public function __construct(
        public readonly int $status,
        string $message,
        public readonly array $fields = [],
    ) {
        parent::__construct($message, $status);
    }
}
