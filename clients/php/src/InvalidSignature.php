<?php

declare(strict_types=1);

namespace Errand;

/** A callback whose X-Errand-Signature is missing, forged, or too old: answer it 401. */
class InvalidSignature extends ErrandException
{
}
