<?php

declare(strict_types=1);

namespace Errand;

/** 404: no job with that id, or it was queued with another token. */
class JobNotFound extends RequestFailed
{
}
