<?php

declare(strict_types=1);

namespace Errand;

/** 409: the Idempotency-Key was already used with a different job. */
class IdempotencyConflict extends RequestFailed
{
}
