<?php

declare(strict_types=1);

namespace Errand;

/** Anything errand's client could not do. */
class ErrandException extends \RuntimeException
{
}
