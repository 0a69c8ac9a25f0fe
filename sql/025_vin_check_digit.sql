-- The ISO 3779 check digit (position 9) is mandatory only for North
-- American (WMI 1-5) and Chinese (L) manufacturers; European, Indian and
-- other VINs may hold any VIN character there, and the API now accepts
-- them. Whether a VIN's position 9 is a right check digit is computed
-- from the VIN alone, so every read of a vehicle says it
-- (vinCheckDigitValid) without a stored column.
CREATE FUNCTION vin_check_digit_valid(vin text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT length(vin) = 17
        AND substr(vin, 9, 1) = substr('0123456789X', (s % 11)::integer + 1, 1)
    FROM (SELECT sum((ARRAY[8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4,
                            3, 2])[i]
                     * CASE WHEN substr(vin, i, 1) ~ '^[0-9]$'
                            THEN substr(vin, i, 1)::integer
                            ELSE coalesce(nullif(substr(
                                '12345678123457923456789',
                                strpos('ABCDEFGHJKLMNPRSTUVWXYZ',
                                       substr(vin, i, 1)), 1), '')::integer,
                                0)
                       END) AS s
          FROM generate_series(1, 17) i) t
$$;
